"""Orchestrates `cityguard check`: run the suites on every host, roll up, store evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cityguard.catalog.waivers import apply_waivers
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import CheckResult, ControlResult, Outcome, roll_up_all
from cityguard.verify.reachability import UNREACHABLE
from cityguard.verify.runner import CheckRun, HostRun, run_checks
from cityguard.workspace import Workspace


@dataclass(frozen=True)
class CheckOutcome:
    run_id: str
    hosts: list[HostRun]
    controls: list[ControlResult]
    exit_code: ExitCode


def exit_code_for(controls: list[ControlResult], hosts: list[HostRun]) -> ExitCode:
    """1 when a control failed; else 3 when a host was unreachable, had a problem or a control
    could not be evaluated; else 0."""
    outcomes = {c.outcome for c in controls}
    if Outcome.FAIL in outcomes:
        return ExitCode.FAILED
    if Outcome.ERROR in outcomes or any(h.problem for h in hosts):
        return ExitCode.PARTIAL
    return ExitCode.OK


def with_missing_controls(workspace: Workspace, host_runs: list[HostRun]) -> list[CheckResult]:
    """Every selected host control gets a result on every host: a broken host run gets errors."""
    checks = [r for h in host_runs for r in h.results]
    for host_run in host_runs:
        covered = {c for r in host_run.results for c in r.controls}
        for control in workspace.selection.host_controls:
            if control.id not in covered:
                checks.append(
                    CheckResult(
                        check_id="(none)",
                        host=host_run.host,
                        controls=(control.id,),
                        outcome=Outcome.ERROR,
                        reason=_missing_reason(host_run),
                    )
                )
    return checks


def _missing_reason(host_run: HostRun) -> str:
    if host_run.unreachable:
        return UNREACHABLE  # why is said once for the host, in its problem
    return host_run.problem or "no check ran for this control"


def check(
    workspace: Workspace,
    *,
    limit: str | None = None,
    host_timeout_s: float = 300.0,
    console: Console | None = None,
    progress: bool = True,
) -> CheckOutcome:
    hosts = workspace.inventory.select(limit)
    workspace.selection.for_hosts()  # host controls only: refused when none
    with workspace.lock("check"):
        return _run(workspace, hosts, host_timeout_s, console, progress)


def _run(
    workspace: Workspace,
    hosts: list[str],
    host_timeout_s: float,
    console: Console | None,
    progress: bool,
) -> CheckOutcome:
    selection = workspace.selection.for_hosts()
    run_dir = workspace.new_run_dir("check")
    run = CheckRun(
        checks_dir=workspace.content_dir / "checks",
        inventory=workspace.write_inventory(run_dir),
        hosts=hosts,
        controls=selection.control_ids,
        parameters=selection.parameters,
        host_timeout_s=host_timeout_s,
    )
    with workspace.record("check", hosts, run_dir, selection) as rec:
        with Progress(
            TextColumn("checking hosts"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not progress,
            transient=True,
        ) as bar:
            task = bar.add_task("hosts", total=len(hosts))
            host_runs = run_checks(run, on_host_done=lambda _: bar.advance(task))
        checks = with_missing_controls(workspace, host_runs)
        controls = apply_waivers(
            roll_up_all(checks), workspace.site.waivers, workspace.inventory, date.today()
        )
        code = exit_code_for(controls, host_runs)
        rec.add_check_results(checks)
        rec.add_control_results(controls)
        rec.finish(code, {"host_problems": {h.host: h.problem for h in host_runs if h.problem}})
    return CheckOutcome(rec.run_id, host_runs, controls, code)
