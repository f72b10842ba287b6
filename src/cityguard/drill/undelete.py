"""`cityguard backup undelete SYSTEM --since TIME`: recover an S3 repository whose current
objects an attacker (or a mistake) deleted, as the recovery runbook says (dr/plan-schema.md).

With versioning and Object Lock a delete only puts a delete marker on top of the locked
versions. This removes the markers of deletes made at or after the incident's start, under the
plan's prefix only, and leaves older markers alone (restic's own deletes of locks, pruned packs
and forgotten snapshots); then ``restic unlock`` removes the locks that came back stale, and the
repository's snapshots are listed to show it opens again. ``--check`` lists, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from cityguard.core.errors import UsageError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import Change
from cityguard.drill import restic
from cityguard.drill.action import (
    load_area,
    offsite_bucket,
    pick,
    restic_for,
    system_subject,
)
from cityguard.drill.runner import SHORT
from cityguard.drill.s3 import markers_since
from cityguard.workspace import Workspace


@dataclass
class UndeleteOutcome:
    run_id: str
    system: str
    exit_code: ExitCode
    lines: list[str] = field(default_factory=list)


def parse_since(text: str) -> datetime:
    """An ISO 8601 time with its zone, not in the future (the incident's start)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since: '{text}' is not an ISO 8601 time (e.g. 2026-12-03T06:00:00Z)"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"--since: '{text}' has no time zone (e.g. 2026-12-03T06:00:00Z)")
    if when > datetime.now(UTC):
        raise UsageError(f"--since: '{text}' is in the future")
    return when


def backup_undelete(
    workspace: Workspace, system: str, since: datetime, *, check: bool
) -> UndeleteOutcome:
    area = load_area(workspace)
    plan = pick(area, system)
    bucket, _ = offsite_bucket(plan)
    s3 = plan.spec.repository.s3
    assert s3 is not None  # offsite_bucket refused a plan without one
    prefix = f"{s3.prefix.strip('/')}/" if s3.prefix.strip("/") else ""
    subject = system_subject(plan)
    run_dir = workspace.new_run_dir("backup-undelete")
    command = f"backup undelete {plan.system} --since {since.isoformat()}"
    outcome = UndeleteOutcome("", plan.system, ExitCode.OK)
    with workspace.record(
        command + (" --check" if check else ""), [], run_dir, workspace.selection
    ) as rec:
        outcome.run_id = rec.run_id
        with rec.step("delete markers", subject) as step:
            markers = bucket.delete_markers(prefix)
            undo = markers_since(markers, since)
            step.detail = (
                f"{len(undo)} of {len(markers)} deleted keys under '{prefix}' in {bucket.name} "
                f"were deleted at or after {since.isoformat()}"
            )
            outcome.lines.append(step.detail)
            outcome.lines += [
                f"{'would restore' if check else 'restore'} {m.key} "
                f"(deleted {m.deleted_at.isoformat()})"
                for m in undo
            ]
        if check or not undo:
            rec.finish(ExitCode.OK, {"markers": len(undo), "check": check})
            return outcome
        with rec.step("remove markers", subject) as step:
            step.detail = f"{bucket.remove_markers(undo)} delete markers removed"
        rec.add_changes(
            Change(subject, None, f"removed the delete marker of {m.key}", None) for m in undo
        )
        repo = restic_for(workspace, area, plan)
        with rec.step("unlock", subject):
            repo.run(restic.unlock_args(), "removing stale locks", timeout=SHORT)
        with rec.step("snapshots", subject) as step:
            snapshots = repo.snapshots([f"{restic.TAG_SYSTEM}{plan.system}"])
            step.detail = f"the repository opens: {len(snapshots)} snapshots"
            outcome.lines.append(f"{plan.system}: {step.detail}")
        rec.finish(ExitCode.OK, {"markers": len(undo), "snapshots": len(snapshots)})
    return outcome
