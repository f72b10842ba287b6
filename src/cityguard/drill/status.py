"""`cityguard drill status`: per system, the last backup's age against the RPO target, the last
drill's result and RTO, and the next scheduled backup, drill and (an S3 plan) off-site bucket
job. Read from the evidence store and the plans; only a system whose source host pushes its own
backups (``backup_runs_on: source-host``), which the evidence store does not see, has its newest
complete backup set read from its repository. ``drill schedule`` writes the timers (``--list``
shows their next runs)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cityguard.core.errors import CityguardError
from cityguard.core.records import Subject, SubjectKind
from cityguard.drill import restic, units
from cityguard.drill.action import DrillArea, load_area, restic_for
from cityguard.drill.plan import Plan
from cityguard.drill.runner import next_elapses
from cityguard.workspace import Workspace

CONTROL_NODE = "control node"


@dataclass(frozen=True)
class StatusRow:
    system: str
    rpo_target_s: int
    rto_target_s: int
    last_backup_at: datetime | None
    last_backup_ok: bool | None
    backup_age_s: float | None
    last_drill_at: datetime | None
    last_drill_result: str | None
    last_rto_s: float | None
    next_backup: str | None
    next_drill: str | None
    backup_on: str = CONTROL_NODE  # or the source host that pushes its own backups
    backup_problem: str | None = None  # why the pushed backups could not be read
    next_offsite: str | None = None  # the off-site bucket job of an S3 plan

    @property
    def rpo_met(self) -> bool | None:
        if self.backup_age_s is None:
            return None
        return self.backup_age_s <= self.rpo_target_s


def drill_status(workspace: Workspace) -> list[StatusRow]:
    area = load_area(workspace)
    now = datetime.now(UTC)
    rows = []
    with workspace.open_evidence() as store:
        runs = store.list_runs(limit=500)
        for system, plan in sorted(area.plans.items()):
            backups = [r for r in runs if r.command == f"backup run {system}"]
            good = [r for r in backups if r.exit_code == 0]
            drills = [
                r for r in runs if r.command == f"drill run {system}" and r.exit_code is not None
            ]
            rto = store.measurement_series("rto_s", Subject(SubjectKind.SYSTEM, system), limit=1)
            last_good = good[0] if good else None
            last_at = last_good.started_at if last_good else None
            last_ok = (backups[0].exit_code == 0) if backups else None
            backup_on, problem = plan.pushed_from or CONTROL_NODE, None
            if plan.pushed_from:
                last_at, problem = _pushed_backup_time(workspace, area, plan)
                last_ok = None if last_at is None else True
            last_drill = drills[0] if drills else None
            offsite = plan.offsite_schedule
            rows.append(
                StatusRow(
                    system=system,
                    rpo_target_s=plan.spec.targets.rpo_s,
                    rto_target_s=plan.spec.targets.rto_s,
                    last_backup_at=last_at,
                    last_backup_ok=last_ok,
                    backup_age_s=(now - last_at).total_seconds() if last_at else None,
                    last_drill_at=last_drill.started_at if last_drill else None,
                    last_drill_result=(
                        {0: "pass", 1: "fail"}.get(last_drill.exit_code or 0, "error")
                        if last_drill
                        else None
                    ),
                    last_rto_s=rto[-1].measurement.value if rto else None,
                    next_backup=_first(next_elapses(plan.spec.schedule.backup, 1)),
                    next_drill=_first(next_elapses(plan.spec.schedule.drill, 1)),
                    backup_on=backup_on,
                    backup_problem=problem,
                    next_offsite=_first(next_elapses(offsite, 1)) if offsite else None,
                )
            )
    return rows


def _pushed_backup_time(
    workspace: Workspace, area: DrillArea, plan: Plan
) -> tuple[datetime | None, str | None]:
    """When the newest complete set a source host pushed was taken (its manifest's time), or
    why the repository could not say."""
    try:
        snapshots = restic_for(workspace, area, plan).snapshots(
            [f"{restic.TAG_SYSTEM}{plan.system}", f"{restic.TAG_PART}{restic.MANIFEST_PART}"]
        )
    except CityguardError as error:
        return None, str(error)
    return (max(s.time for s in snapshots), None) if snapshots else (None, None)


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def schedules(plan: Plan) -> list[tuple[str, str]]:
    """(kind, OnCalendar expression) of what runs on a schedule for ``plan``: its backup and
    drill, and the off-site bucket job of an S3 plan."""
    found = [("backup", plan.spec.schedule.backup), ("drill", plan.spec.schedule.drill)]
    if plan.offsite_schedule is not None:
        found.append(("offsite", plan.offsite_schedule))
    return found


def next_runs(workspace: Workspace, count: int = 3) -> list[tuple[str, str, str, list[str]]]:
    """(system, backup|drill|offsite, expression, next run times) for every plan."""
    area = load_area(workspace)
    found = []
    for system, plan in sorted(area.plans.items()):
        for kind, expression in schedules(plan):
            where = f" on {plan.pushed_from}" if _pushed(plan, kind) else ""
            found.append((system, kind + where, expression, next_elapses(expression, count)))
    return found


def _pushed(plan: Plan, kind: str) -> bool:
    """A backup its source host runs from its own timer (`cityguard backup deploy`)."""
    return kind == "backup" and plan.pushed_from is not None


def install_timers(workspace: Workspace, site: Path, unit_dir: str) -> list[str]:
    """Write a service and a timer per system and kind (backup, drill, and offsite for an S3
    plan: on the control node also for a plan whose source host pushes its backups); returns
    what was written. Enabling them (systemctl daemon-reload; systemctl enable --now
    NAME.timer) is left to the operator."""
    area = load_area(workspace)
    directory = Path(unit_dir)
    directory.mkdir(parents=True, exist_ok=True)
    program = shutil.which("cityguard") or str(Path(sys.executable).with_name("cityguard"))
    written = []
    for system, plan in sorted(area.plans.items()):
        for kind, expression in schedules(plan):
            name = units.unit_name(kind, system)
            if _pushed(plan, kind):
                written.append(f"{name}: runs on {plan.pushed_from} (cityguard backup deploy)")
                continue
            service = units.service(kind, system, program, site.resolve())
            (directory / f"{name}.service").write_text(service, encoding="utf-8")
            (directory / f"{name}.timer").write_text(units.timer(kind, system, expression))
            written.append(f"{directory / name}.timer: OnCalendar={expression}")
    return written
