"""Orchestrates the IPv6 area's commands: plan (and, in rollout.py, the rollout).

`ipv6 plan` validates the site's plan, writes its exports into the run directory (recorded as
artifacts with their SHA-256) and, when asked, into an output directory, and records one step
per segment (subject segment) and the number of static addresses per prefix (subject prefix).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import Measurement, Outcome, Step, Subject, SubjectKind
from cityguard.ipv6.export import exports
from cityguard.ipv6.load import load_site_plan
from cityguard.ipv6.plan import AddressPlan
from cityguard.workspace import Workspace


@dataclass(frozen=True)
class PlanOutcome:
    run_id: str
    plan: AddressPlan
    files: dict[str, Path]  # export name -> where it was written
    exit_code: ExitCode


def plan_steps(plan: AddressPlan, at: datetime) -> list[Step]:
    """One step per segment: what the plan gives it."""
    steps = []
    for segment in plan.segments:
        addresses = [a for a in plan.assignments if a.segment == segment.name]
        routed = (
            f"gateway {segment.gateway} on {segment.router}"
            if segment.router is not None
            else "isolated: no gateway, no router"
        )
        detail = (
            f"prefix {segment.prefix}; {routed}; "
            f"{'SLAAC' if segment.slaac else 'static only'}; "
            + ", ".join(f"{a.host} {a.address}" for a in addresses)
        )
        steps.append(
            Step(
                "plan segment",
                Subject(SubjectKind.SEGMENT, segment.label),
                at,
                at,
                Outcome.PASS,
                detail,
            )
        )
    return steps


def plan_measurements(plan: AddressPlan) -> list[Measurement]:
    return [
        Measurement(
            "static_addresses",
            len([a for a in plan.assignments if a.segment == s.name]),
            "addresses",
            Subject(SubjectKind.PREFIX, str(s.prefix)),
        )
        for s in plan.segments
    ]


def ipv6_plan(workspace: Workspace, out_dir: Path | None = None) -> PlanOutcome:
    site_plan = load_site_plan(workspace.site)  # every problem before anything is written
    plan = site_plan.plan
    run_dir = workspace.new_run_dir("ipv6-plan")
    with workspace.record("ipv6 plan", plan.hosts, run_dir, workspace.selection) as rec:
        files: dict[str, Path] = {}
        export_dir = run_dir / "exports"
        export_dir.mkdir()
        for name, text in exports(plan).items():
            (export_dir / name).write_text(text)
            files[name] = export_dir / name
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                (out_dir / name).write_text(text)
                files[name] = out_dir / name
        rec.add_steps(plan_steps(plan, datetime.now(UTC)))
        rec.add_measurements(plan_measurements(plan))
        rec.finish(
            ExitCode.OK,
            {
                "plan": plan.file,
                "site_prefix": str(plan.site_prefix),
                "segments": {s.label: str(s.prefix) for s in plan.segments},
                "warnings": [str(w) for w in plan.warnings],
            },
        )
    return PlanOutcome(rec.run_id, plan, files, ExitCode.OK)
