"""Orchestrates one hardening run: playbook through ansible-runner, then evidence.

Only orchestration lives here; Ansible is driven by cityguard.ansible, and what is enforced is
in playbooks/ and policies/. The evidence of a run: one Change record per changed task and
selected control it served (in check mode: what would change, with its diff), the per-host
counts and every failure in the run's summary, and the run directory's files (the recorder).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from rich.console import Console

from cityguard.ansible import PlaybookRequest, PlaybookResult, TaskResult, run_playbook
from cityguard.ansible.diffs import diff_text
from cityguard.ansible.progress import PlaybookProgress
from cityguard.catalog import CONTROL_ID
from cityguard.catalog.waivers import apply_waivers, waived_by_host
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import (
    Change,
    CheckResult,
    ControlResult,
    Outcome,
    Subject,
    roll_up_all,
)
from cityguard.evidence.errors import EvidenceError
from cityguard.evidence.recorder import Recorder
from cityguard.harden.tags import check_tags, role_tags
from cityguard.workspace import Workspace

PLAYBOOK = "harden.yml"


@dataclass(frozen=True)
class HardenOutcome:
    run_id: str
    result: PlaybookResult
    exit_code: ExitCode
    controls: list[str]  # the controls this run enforced
    check: bool = False  # check mode: nothing was changed, the result says what would be
    evidence_problem: str | None = None  # the playbook ran but its evidence could not be kept
    # after a real run: the enforced controls checked again on the hosts, as `check` reads them
    verification: tuple[ControlResult, ...] = ()

    @property
    def still_failing(self) -> list[ControlResult]:
        return [c for c in self.verification if c.outcome is Outcome.FAIL]


def exit_code_for(result: PlaybookResult) -> ExitCode:
    """A host that failed or could not be reached means the step did not run everywhere.

    ansible-runner takes Ctrl-C itself and returns a canceled run: that is an interruption,
    not a partial run, and says so with the shell's code for it."""
    if result.status == "canceled":
        return ExitCode.INTERRUPTED
    if result.unreachable_hosts or result.failed_hosts or result.rc != 0:
        return ExitCode.PARTIAL
    return ExitCode.OK


def harden(
    workspace: Workspace,
    *,
    limit: str | None = None,
    tags: list[str] | None = None,
    check: bool = False,
    console: Console | None = None,
    progress: bool = True,
) -> HardenOutcome:
    hosts = workspace.inventory.select(limit)
    selection = workspace.selection.for_hosts()  # host controls only: refused when none
    project_dir = workspace.content_dir / "playbooks"
    check_tags(tags, role_tags(project_dir / PLAYBOOK), selection.control_ids)
    command = "harden --check" if check else "harden"
    with workspace.lock(command):
        return _run(workspace, hosts, tags, check, console, progress)


def _run(
    workspace: Workspace,
    hosts: list[str],
    tags: list[str] | None,
    check: bool,
    console: Console | None,
    progress: bool,
) -> HardenOutcome:
    selection = workspace.selection.for_hosts()
    run_dir = workspace.new_run_dir("harden-check" if check else "harden")
    request = PlaybookRequest(
        project_dir=workspace.content_dir / "playbooks",
        playbook=PLAYBOOK,
        inventory=workspace.write_inventory(run_dir, waived_hostvars(workspace)),
        run_dir=run_dir,
        limit=",".join(hosts),  # never empty: select() refuses an empty selection
        tags=list(tags or []),
        check=check,
        diff=True,  # the evidence keeps each change's diff, also when the change is made
        extra_vars={
            "cityguard_selected_controls": selection.control_ids,
            "cityguard_params": selection.parameters,
        },
    )
    command = "harden --check" if check else "harden"
    result: PlaybookResult | None = None
    recorder: Recorder | None = None
    verification: tuple[ControlResult, ...] = ()
    try:
        with workspace.record(command, hosts, run_dir, selection) as rec:
            recorder = rec
            with PlaybookProgress(PLAYBOOK, console=console, enabled=progress) as view:
                result = run_playbook(request, on_event=view.on_event)
            rec.add_changes(changes_of(result, selection.control_ids))
            code = exit_code_for(result)
            summary = summarize(result, selection.control_ids)
            if not check:
                checks = verify_enforced(workspace, request, result, selection.control_ids)
                # only valid waivers: an expired one is the auditors' finding (check fails it),
                # while harden, which enforced the control anyway, answers for the state alone
                today = date.today()
                valid = tuple(w for w in workspace.site.waivers if w.expires >= today)
                verification = tuple(
                    apply_waivers(roll_up_all(checks), valid, workspace.inventory, today)
                )
                rec.add_check_results(checks)
                rec.add_control_results(list(verification))
                code = exit_code_after_verification(code, verification, result.failed_hosts)
                summary["still_failing"] = [
                    {"host": c.host, "control": c.control_id, "observed": c.observed}
                    for c in verification
                    if c.outcome is Outcome.FAIL
                ]
            rec.finish(code, summary)
    except EvidenceError as error:
        if result is None:
            raise  # nothing ran on a host: the error says all there is
        # The hosts were changed: what changed must still be shown, with the evidence problem.
        assert recorder is not None  # the playbook runs inside the recorded run
        problem = str(error)
        if recorder.closed_with is not None:
            problem += f"; the run was closed with exit code {recorder.closed_with}"
        return HardenOutcome(
            recorder.run_id,
            result,
            ExitCode.PARTIAL,
            selection.control_ids,
            check,
            evidence_problem=problem,
        )
    return HardenOutcome(
        rec.run_id, result, code, selection.control_ids, check, verification=verification
    )


def enforced_controls(result: PlaybookResult, selected: Collection[str]) -> dict[str, list[str]]:
    """Per reachable host, the selected controls whose tasks ran there (changed or not): what
    this run enforced, so what must now hold as `check` reads it. A compliant task counts too:
    a file of cityguard's left as it was may still be overridden by another one."""
    unreachable = set(result.unreachable_hosts)
    enforced: dict[str, set[str]] = {}
    for task in result.tasks:
        if task.host in unreachable or task.status not in ("ok", "changed", "failed"):
            continue
        ids = [tag for tag in task.tags if CONTROL_ID.match(tag) and tag in selected]
        if ids:
            enforced.setdefault(task.host, set()).update(ids)
    return {host: sorted(ids) for host, ids in sorted(enforced.items())}


def verify_enforced(
    workspace: Workspace,
    request: PlaybookRequest,
    result: PlaybookResult,
    selected: list[str],
) -> list[CheckResult]:
    """Run the checks of the enforced controls on the hosts that ran them: the same facts and
    assertions as `cityguard check`, so harden never reports success while check would fail."""
    from cityguard.verify import CheckRun, run_checks  # pytest and testinfra: only when needed

    enforced = enforced_controls(result, selected)
    if not enforced:
        return []
    controls = sorted({c for ids in enforced.values() for c in ids})
    run = CheckRun(
        checks_dir=workspace.content_dir / "checks",
        inventory=request.inventory,
        hosts=list(enforced),
        controls=controls,
        parameters=workspace.selection.for_hosts().parameters,
    )
    checks: list[CheckResult] = []
    for host_run in run_checks(run):
        wanted = set(enforced[host_run.host])
        kept = [r for r in host_run.results if wanted & set(r.controls)]
        covered = {c for r in kept for c in r.controls}
        checks += kept
        checks += [
            CheckResult(
                check_id="(none)",
                host=host_run.host,
                controls=(control,),
                outcome=Outcome.ERROR,
                reason=host_run.problem or "no check ran for this control",
            )
            for control in sorted(wanted - covered)
        ]
    return checks


def exit_code_after_verification(
    code: ExitCode, verification: Collection[ControlResult], failed_hosts: Collection[str] = ()
) -> ExitCode:
    """A control still failing after hardening is a failure (1) where the run went through; on
    a host where it failed (a change rolled back, a file that could not be changed) the run is
    partial (3) already, and what still fails there is reported with it. A verification that
    could not run leaves the run partial (3). Never 0 while a verified control fails."""
    failing = [c for c in verification if c.outcome is Outcome.FAIL]
    if any(c.host not in failed_hosts for c in failing):
        return ExitCode.FAILED
    if failing and code is ExitCode.OK:
        return ExitCode.FAILED
    outcomes = {c.outcome for c in verification}
    if code is ExitCode.OK and Outcome.ERROR in outcomes:
        return ExitCode.PARTIAL
    return code


def controls_of_task(task: TaskResult, selected: Collection[str]) -> list[str]:
    """The selected controls a task enforces: those its module reports it changed (a task
    serving several controls says which needed the change), else its tags (every hardening
    task carries them); a file written for several controls is reported only against those run."""
    ids = task.changed_controls if task.changed_controls is not None else task.tags
    return [tag for tag in ids if CONTROL_ID.match(tag) and tag in selected]


def waived_hostvars(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """Per host, the controls a valid waiver exempts: the playbook leaves them alone there."""
    waived = waived_by_host(workspace.site.waivers, workspace.inventory, date.today())
    return {host: {"cityguard_waived_controls": ids} for host, ids in waived.items()}


def changes_of(result: PlaybookResult, selected: Collection[str]) -> list[Change]:
    """One Change per changed task and selected control it served, in the order Ansible ran
    them. A change serving no selected control (e.g. a handler restarting a daemon) is kept
    without a control: the evidence must show everything a run changed."""
    changes: list[Change] = []
    for task in result.tasks:
        if task.status != "changed":
            continue
        description = f"{task.role} : {task.task}" if task.role else task.task
        if task.itemized:  # a module that says what it changed item by item (a sysctl key)
            changes += [
                Change(
                    Subject.host(task.host),
                    str(item["control"]),
                    f"{description}: {item.get('what', '')}".rstrip(": "),
                    diff_text([item["diff"]]) if item.get("diff") else None,
                )
                for item in task.itemized
                if item["control"] in selected
            ]
            continue
        diff = diff_text(task.diff)
        served: list[str | None] = [*controls_of_task(task, selected)] or [None]
        changes += [Change(Subject.host(task.host), c, description, diff) for c in served]
    return changes


def summarize(result: PlaybookResult, selected: Collection[str]) -> dict[str, object]:
    """The run's summary in the evidence: per-host counts and every failure. Changes are not
    here but Change records (changes_of), which reports can query without parsing."""
    return {
        "finished_at": datetime.now(UTC).isoformat(),
        "rc": result.rc,
        "status": result.status,
        "hosts": {host: asdict(stats) for host, stats in result.hosts.items()},
        "failures": [
            {
                "host": t.host,
                "task": t.task,
                "role": t.role,
                "status": t.status,
                "controls": controls_of_task(t, selected),
                "message": t.message,
                "ignored": t.ignored,
            }
            for t in result.tasks
            if t.status in ("failed", "unreachable")
        ],
    }
