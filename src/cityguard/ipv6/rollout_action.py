"""Orchestrates `cityguard ipv6 rollout`: phases, the gate after each, rollback of a failed one.

Each phase runs playbooks/ipv6.yml on its hosts (ipv6_phase=apply): the host arms its own
timed revert (cityguard_change_guard) before it changes anything. Then the gate runs the IPv6
checks (checks/test_ipv6.py, through cityguard.verify) on every host rolled out so far. A
passing gate confirms the phase's guards; a failing one restores them (and when a host no
longer answers, its timer puts the old files back by itself: the rollout waits for that and
checks the host answers again). The rollout stops at the first failed gate, naming check and
host; phases done before stay done. Every apply, gate, confirmation and rollback is a step in
the run's evidence. `--check` runs the playbook in check mode on every host of the plan and
records what would change, changing nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.ansible import PlaybookRequest, PlaybookResult, run_playbook
from cityguard.ansible.diffs import diff_text
from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import (
    Change,
    CheckResult,
    Outcome,
    Step,
    Subject,
    SubjectKind,
    roll_up_all,
)
from cityguard.evidence.recorder import Recorder
from cityguard.ipv6.export import forward_zone_fragment, reverse_zone, reverse_zone_fragment
from cityguard.ipv6.hostvars import plan_hostvars
from cityguard.ipv6.load import load_site_plan
from cityguard.ipv6.plan import AddressPlan
from cityguard.ipv6.rollout import Phase, gate_hostvars, phases
from cityguard.verify.runner import CheckRun, run_checks
from cityguard.workspace import Workspace

PLAYBOOK = "ipv6.yml"
IPV6_CHECKS_MODULE = "test_ipv6"


@dataclass
class RolloutOutcome:
    run_id: str = ""
    steps: list[Step] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)
    diffs: list[tuple[str, str, str]] = field(default_factory=list)  # host, task, diff
    failure: str | None = None
    gate_seconds: list[float] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK


def ipv6_controls(workspace: Workspace) -> list[str]:
    """The selected controls proven by the IPv6 checks: the gate. None selected: refused."""
    ids = [
        c.id
        for c in workspace.selection.host_controls
        if any(check.startswith(f"{IPV6_CHECKS_MODULE}::") for check in c.checks)
    ]
    if not ids:
        raise ConfigError(
            [
                ConfigProblem(
                    workspace.site.display or str(workspace.site.path),
                    None,
                    "baseline",
                    f"baseline {workspace.selection.baseline} selects no IPv6 control: "
                    "a rollout would have no gate",
                )
            ]
        )
    return ids


def ipv6_rollout(
    workspace: Workspace,
    *,
    check: bool = False,
    batch_size: int | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> RolloutOutcome:
    site_plan = load_site_plan(workspace.site)
    settings, plan = site_plan.settings, site_plan.plan
    controls = ipv6_controls(workspace)
    servers = list(dict.fromkeys(a.host for a in plan.assignments if a.role == "server"))
    try:
        order = phases(servers, plan.routers, settings.canary, batch_size or settings.batch_size)
    except ValueError as error:
        where = workspace.site.locate(("ipv6", "canary"))
        raise ConfigError([ConfigProblem(where, None, "ipv6.canary", str(error))]) from None
    hosts = [h for phase in order for h in phase.hosts]
    planned = {h: v["cityguard_ipv6"] for h, v in plan_hostvars(plan).items()}
    run_dir = workspace.new_run_dir("ipv6-rollout-check" if check else "ipv6-rollout")
    command = "ipv6 rollout --check" if check else "ipv6 rollout"
    outcome = RolloutOutcome()
    with (
        workspace.lock("ipv6-rollout"),
        workspace.record(command, hosts, run_dir, workspace.selection) as rec,
    ):
        outcome.run_id = rec.run_id
        rollout = _Rollout(workspace, rec, run_dir, settings.revert_after_s, outcome, say)
        rollout.zones = write_zone_fragments(plan, run_dir / "zones")
        if check:
            rollout.check_only(hosts)
        else:
            rollout.run(order, planned, controls)
        rec.add_steps(outcome.steps)
        rec.finish(
            outcome.exit_code,
            {
                "phases": [{"name": p.name, "hosts": list(p.hosts)} for p in order],
                "changed": outcome.changed,
                "failure": outcome.failure,
                "gate_seconds": outcome.gate_seconds,
            },
        )
    return outcome


def write_zone_fragments(plan: AddressPlan, directory: Path) -> list[dict[str, str]]:
    """The plan's AAAA and PTR fragments as files of the run (artifacts), for the DNS server's
    role (ipv6_dns) to load: ``[{zone, file}]``."""
    directory.mkdir(parents=True, exist_ok=True)
    zones = []
    for zone, text in (
        (plan.domain, forward_zone_fragment(plan)),
        (reverse_zone(plan), reverse_zone_fragment(plan)),
    ):
        path = directory / f"{zone}.zone"
        path.write_text(text)
        zones.append({"zone": zone, "file": str(path)})
    return zones


def _not_done(result: PlaybookResult) -> list[str]:
    """The hosts a playbook run failed on or could not reach, sorted: the run did not finish
    its change there, whichever the reason."""
    return sorted(set(result.failed_hosts) | set(result.unreachable_hosts))


class _Rollout:
    def __init__(
        self,
        workspace: Workspace,
        rec: Recorder,
        run_dir: Path,
        revert_after_s: int,
        outcome: RolloutOutcome,
        say: Callable[[str], None],
    ) -> None:
        self.workspace = workspace
        self.rec = rec
        self.run_dir = run_dir
        self.revert_after_s = revert_after_s
        self.outcome = outcome
        self.say = say
        self.runs = 0
        self.zones: list[dict[str, str]] = []

    def playbook(
        self, hosts: tuple[str, ...] | list[str], phase: str, check: bool
    ) -> PlaybookResult:
        self.runs += 1
        directory = self.run_dir / f"{self.runs:02d}-{phase}"
        directory.mkdir()
        request = PlaybookRequest(
            project_dir=self.workspace.content_dir / "playbooks",
            playbook=PLAYBOOK,
            inventory=self.workspace.write_inventory(directory),
            run_dir=directory,
            limit=",".join(hosts),
            check=check,
            diff=True,
            extra_vars={
                "ipv6_phase": phase,
                "ipv6_revert_after_s": self.revert_after_s,
                "ipv6_dns_zones": self.zones,
            },
        )
        return run_playbook(request)

    def record_changes(self, result: PlaybookResult) -> None:
        changes = []
        for task in result.tasks:
            if task.status != "changed":
                continue
            self.outcome.changed[task.host] = self.outcome.changed.get(task.host, 0) + 1
            text = diff_text(task.diff)
            if text:
                self.outcome.diffs.append((task.host, task.task, text))
            changes.append(Change(Subject(SubjectKind.HOST, task.host), None, task.task, text))
        for host in result.hosts:
            self.outcome.changed.setdefault(host, 0)
        self.rec.add_changes(changes)

    def playbook_step(self, name: str, started: datetime, detail: str, broken: list[str]) -> None:
        """The step of a playbook run on a phase's hosts: an error naming the hosts it failed on
        or could not reach, if any."""
        self.step(
            name,
            started,
            Outcome.ERROR if broken else Outcome.PASS,
            detail + (f"; failed on {', '.join(broken)}" if broken else ""),
        )

    def step(
        self, name: str, started: datetime, outcome: Outcome, detail: str, subject: str = ""
    ) -> None:
        kind = SubjectKind.HOST if subject else SubjectKind.SITE
        self.outcome.steps.append(
            Step(
                name,
                Subject(kind, subject or self.workspace.site.name),
                started,
                datetime.now(UTC),
                outcome,
                detail,
            )
        )

    def check_only(self, hosts: list[str]) -> None:
        started = datetime.now(UTC)
        result = self.playbook(hosts, "apply", check=True)
        self.record_changes(result)
        broken = _not_done(result)
        ok = Outcome.PASS if not broken else Outcome.ERROR
        detail = ", ".join(
            f"{h}: {n} would change" for h, n in sorted(self.outcome.changed.items())
        )
        self.step(
            "check (would change)", started, ok, detail + (f"; failed: {broken}" if broken else "")
        )
        if broken:
            self.outcome.failure = f"the check run failed on {', '.join(broken)}"
            self.outcome.exit_code = ExitCode.PARTIAL

    def run(
        self, order: list[Phase], planned: dict[str, dict[str, Any]], controls: list[str]
    ) -> None:
        done: list[str] = []
        for phase in order:
            self.say(f"{phase.name}: {', '.join(phase.hosts)}")
            started = datetime.now(UTC)
            result = self.playbook(phase.hosts, "apply", check=False)
            self.record_changes(result)
            broken = _not_done(result)
            changed = sum(self.outcome.changed.get(h, 0) for h in phase.hosts)
            applied = f"{', '.join(phase.hosts)}: {changed} changed"
            self.playbook_step(f"apply {phase.name}", started, applied, broken)
            if broken:
                self.outcome.failure = f"{phase.name}: the change failed on {', '.join(broken)}"
                self.rollback(phase)
                self.outcome.exit_code = ExitCode.PARTIAL
                return
            failure = self.gate(phase, [*done, *phase.hosts], planned, controls)
            if failure is not None:
                self.outcome.failure = f"{phase.name}: gate failed: {failure}"
                self.rollback(phase)
                self.outcome.exit_code = ExitCode.FAILED
                return
            started = datetime.now(UTC)
            if changed == 0:  # a guard is armed only for a change: nothing waits to be confirmed
                self.step(f"confirm {phase.name}", started, Outcome.PASS, "nothing changed")
                done.extend(phase.hosts)
                continue
            confirmed = self.playbook(phase.hosts, "confirm", check=False)
            bad = _not_done(confirmed)
            self.playbook_step(f"confirm {phase.name}", started, "timed reverts cancelled", bad)
            if bad:
                self.outcome.failure = f"{phase.name}: could not confirm on {', '.join(bad)}"
                self.outcome.exit_code = ExitCode.PARTIAL
                return
            done.extend(phase.hosts)

    def gate(
        self,
        phase: Phase,
        done: list[str],
        planned: dict[str, dict[str, Any]],
        controls: list[str],
    ) -> str | None:
        started = datetime.now(UTC)
        directory = self.run_dir / f"gate-{phase.name.replace(' ', '-')}"
        directory.mkdir()
        inventory = directory / "inventory.yml"
        self.workspace.inventory.with_hostvars(gate_hostvars(planned, done)).write(inventory)
        clock = time.monotonic()
        host_runs = run_checks(
            CheckRun(
                checks_dir=self.workspace.content_dir / "checks",
                inventory=inventory,
                hosts=done,
                controls=controls,
                parameters=self.workspace.selection.parameters,
            )
        )
        self.outcome.gate_seconds.append(round(time.monotonic() - clock, 2))
        checks: list[CheckResult] = [r for h in host_runs for r in h.results]
        self.rec.add_check_results(checks)
        self.rec.add_control_results(roll_up_all(checks))
        failed = [
            f"{r.controls[0]} {r.check_id} on {r.host}: {r.reason or r.observed}"
            for r in checks
            if r.outcome in (Outcome.FAIL, Outcome.ERROR)
        ]
        failed += [f"{h.host}: {h.problem}" for h in host_runs if h.problem]
        passed = sum(1 for r in checks if r.outcome is Outcome.PASS)
        self.step(
            f"gate {phase.name}",
            started,
            Outcome.FAIL if failed else Outcome.PASS,
            f"{passed} checks passed on {', '.join(done)}"
            + (f"; first failure: {failed[0]}" if failed else ""),
        )
        return failed[0] if failed else None

    def rollback(self, phase: Phase) -> None:
        started = datetime.now(UTC)
        result = self.playbook(phase.hosts, "restore", check=False)
        lost = _not_done(result)
        if lost:  # the host's own timer puts the old files back: wait for it, then try again
            time.sleep(self.revert_after_s + 10)
            result = self.playbook(phase.hosts, "restore", check=False)
            lost = _not_done(result)
        self.step(
            f"rollback {phase.name}",
            started,
            Outcome.ERROR if lost else Outcome.PASS,
            f"previous network configuration back on {', '.join(phase.hosts)}"
            + (f"; still not answering: {', '.join(lost)}" if lost else "; hosts answer over SSH"),
        )
