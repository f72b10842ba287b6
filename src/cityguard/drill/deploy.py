"""`cityguard backup deploy`: put the backups of ``backup_runs_on: source-host`` plans on their
source hosts (dr/README.md, "Backups that run on the source host").

Per system: the credentials go to the host over SSH standard input (root-only file, written
only when they differ), then ``playbooks/backup.yml`` installs the pinned restic, the agent,
the job and the systemd service and timer from the plan's schedule. ``--check`` changes nothing
and says what would change. Each part is a step of the evidence run; what changed is recorded
per host (a credentials change without its content).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cityguard.ansible import PlaybookRequest, PlaybookResult, run_playbook
from cityguard.ansible.diffs import diff_text
from cityguard.core.errors import CityguardError, UsageError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import Change, Subject, SubjectKind
from cityguard.drill import push, units
from cityguard.drill.action import load_area, system_subject
from cityguard.drill.plan import Plan
from cityguard.drill.runner import Hosts
from cityguard.hostside import cityguard_backup_agent
from cityguard.workspace import Workspace

PLAYBOOK = "backup.yml"
HOST_PYTHON = "/usr/bin/python3"


@dataclass
class DeployOutcome:
    run_id: str
    exit_code: ExitCode
    check: bool
    lines: list[str] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)


def select_push_plans(plans: dict[str, Plan], systems: list[str]) -> list[Plan]:
    """The plans named (all that push when none is named); every problem at once, and an
    empty selection is refused rather than taken for every plan."""
    pushing = {name: plan for name, plan in plans.items() if plan.pushed_from}
    problems = []
    for name in systems:
        if name not in plans:
            known = ", ".join(sorted(plans)) or "none"
            problems.append(f"system: no plan for '{name}' (plans: {known})")
        elif name not in pushing:
            problems.append(
                f"system: {name} is backed up by the control node (backup_runs_on: "
                f"control-node in {plans[name].display}); `cityguard drill schedule` installs "
                "its timers"
            )
    if problems:
        raise UsageError("\n".join(problems))
    chosen = [pushing[name] for name in systems] if systems else list(pushing.values())
    if not chosen:
        raise UsageError("system: no plan has backup_runs_on: source-host; nothing to deploy")
    return sorted(chosen, key=lambda plan: plan.system)


def host_job(plan: Plan) -> dict[str, object]:
    """One system's entry in the playbook's ``cityguard_backup_jobs`` (no secret in it)."""
    system = plan.system
    return {
        "system": system,
        "job": push.job(plan),
        "service": units.agent_service(
            system,
            HOST_PYTHON,
            push.AGENT,
            push.job_path(system),
            push.credentials_path(system),
        ),
        "timer": units.timer("backup", system, plan.spec.schedule.backup),
    }


def backup_deploy(workspace: Workspace, systems: list[str], *, check: bool) -> DeployOutcome:
    area = load_area(workspace)
    plans = select_push_plans(area.plans, systems)
    restic_binary = Path(area.restic_binary)
    if not restic_binary.is_file():
        raise CityguardError(
            f"restic not found at {restic_binary} (run tools/components/restic.sh, or set "
            "drill.restic): it is the binary deployed to the hosts"
        )
    hosts = Hosts(workspace.inventory)
    by_host: dict[str, list[Plan]] = {}
    for plan in plans:
        by_host.setdefault(plan.source_hosts[0], []).append(plan)
    run_dir = workspace.new_run_dir("backup-deploy")
    names = " ".join(plan.system for plan in plans)
    outcome = DeployOutcome("", ExitCode.OK, check)
    with workspace.record(
        f"backup deploy {names}" + (" --check" if check else ""),
        sorted(by_host),
        run_dir,
        workspace.selection,
    ) as rec:
        outcome.run_id = rec.run_id
        changes: list[Change] = []
        for plan in plans:
            host = plan.source_hosts[0]
            path = push.credentials_path(plan.system)
            with rec.step(f"credentials {plan.system}", system_subject(plan)) as step:
                done = hosts.run(
                    host,
                    push.write_credentials(plan.system, check=check),
                    "writing the backup credentials",
                    input_text=push.credentials(plan),
                )
                state = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "?"
                verb = {"changed": "would change" if check else "written"}.get(state, state)
                step.detail = f"{host}: {path} {verb}"
                outcome.lines.append(f"{plan.system}: {host}: {path} {verb}")
                if state == "changed":
                    outcome.changed[host] = outcome.changed.get(host, 0) + 1
                    changes.append(
                        Change(
                            Subject(SubjectKind.HOST, host),
                            None,
                            f"backup credentials of {plan.system} ({path}, 0600 root)",
                            None,  # a secret: that it changed is recorded, never its content
                        )
                    )
        with rec.step("playbook", Subject(SubjectKind.SITE, workspace.site.name)) as step:
            result = run_playbook(
                PlaybookRequest(
                    project_dir=workspace.content_dir / "playbooks",
                    playbook=PLAYBOOK,
                    inventory=workspace.write_inventory(run_dir),
                    run_dir=run_dir,
                    limit=",".join(sorted(by_host)),
                    check=check,
                    diff=True,
                    extra_vars={
                        "cityguard_backup_jobs": {
                            host: [host_job(plan) for plan in host_plans]
                            for host, host_plans in by_host.items()
                        },
                        "cityguard_backup_restic": str(restic_binary.resolve()),
                        "cityguard_backup_agent": str(Path(cityguard_backup_agent.__file__)),
                    },
                )
            )
            changes += _playbook_changes(result, outcome)
            broken = sorted(set(result.failed_hosts) | set(result.unreachable_hosts))
            step.detail = f"{result.changed_total} changed" + (
                f"; failed on {', '.join(broken)}" if broken else ""
            )
            if broken or result.rc != 0:
                step.fail()
                outcome.exit_code = ExitCode.PARTIAL
            for task in result.tasks:
                if task.status == "failed" and task.message:
                    outcome.lines.append(f"{task.host}: {task.task}: {task.message}")
        rec.add_changes(changes)
        for host in by_host:
            outcome.changed.setdefault(host, 0)
            expression = ", ".join(p.spec.schedule.backup for p in by_host[host])
            outcome.lines.append(
                f"{host}: {outcome.changed[host]} changed; timers "
                + ", ".join(units.unit_name("backup", p.system) for p in by_host[host])
                + f" ({expression})"
            )
        rec.finish(
            outcome.exit_code,
            {"systems": [p.system for p in plans], "check": check, "changed": outcome.changed},
        )
    return outcome


def _playbook_changes(result: PlaybookResult, outcome: DeployOutcome) -> list[Change]:
    changes = []
    for task in result.tasks:
        if task.status != "changed":
            continue
        outcome.changed[task.host] = outcome.changed.get(task.host, 0) + 1
        changes.append(
            Change(Subject(SubjectKind.HOST, task.host), None, task.task, diff_text(task.diff))
        )
    return changes
