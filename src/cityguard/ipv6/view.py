"""How the IPv6 plan and rollout are shown: tables for people, JSON for machines."""

from __future__ import annotations

import json

from rich import box
from rich.console import Console
from rich.table import Table

from cityguard.ipv6.action import PlanOutcome
from cityguard.ipv6.export import plan_data
from cityguard.ipv6.rollout_action import RolloutOutcome


def plan_summary(console: Console, err: Console, outcome: PlanOutcome, fmt: str = "table") -> None:
    plan = outcome.plan
    for warning in plan.warnings:
        err.print(str(warning), markup=False, highlight=False)
    if fmt == "json":
        console.print_json(json.dumps({"run_id": outcome.run_id, **plan_data(plan)}))
        return
    segments = Table(title=f"IPv6 plan {plan.site_prefix} ({plan.domain})", box=box.SIMPLE)
    for column in ("segment", "vlan", "prefix", "gateway", "slaac"):
        segments.add_column(column, no_wrap=True)
    for s in plan.segments:
        # an isolated segment has no gateway by design; saying so there keeps the table in 80
        # columns (the JSON has the flag itself)
        gateway = "isolated" if s.gateway is None else str(s.gateway)
        segments.add_row(
            s.name, str(s.vlan or ""), str(s.prefix), gateway, "yes" if s.slaac else "no"
        )
    console.print(segments)
    addresses = Table(title="Static addresses", box=box.SIMPLE)
    for column in ("host", "role", "segment", "address"):
        addresses.add_column(column, no_wrap=True)
    for a in plan.assignments:
        addresses.add_row(a.host, a.role, a.segment, str(a.address))
    console.print(addresses)
    console.print(
        "reserved in every segment: ::0-::ff (subnet-router anycast, gateway ::1, "
        "infrastructure) and ::fdff:ffff:ffff:ff80-::fdff:ffff:ffff:ffff (RFC 2526 anycast)",
        markup=False,
    )
    for name, path in outcome.files.items():
        console.print(f"wrote {name}: {path}", markup=False)
    console.print(f"run {outcome.run_id}", markup=False)


def rollout_summary(console: Console, outcome: RolloutOutcome, *, check: bool) -> None:
    """Each step, what changed (the diffs under --check), the first failure, the run id."""
    if check:
        for host, task, diff in outcome.diffs:
            console.print(f"{host}: would change: {task}", markup=False, highlight=False)
            console.print(diff, markup=False, highlight=False)
    table = Table(box=box.SIMPLE)
    for column in ("step", "outcome", "seconds", "detail"):
        table.add_column(column)
    for step in outcome.steps:
        seconds = (step.finished_at - step.started_at).total_seconds()
        table.add_row(step.name, step.outcome.value, f"{seconds:.1f}", step.detail or "")
    console.print(table)
    verb = "would change" if check else "changed"
    console.print(
        f"{verb}: " + ", ".join(f"{h} {n}" for h, n in sorted(outcome.changed.items())),
        markup=False,
    )
    if outcome.failure:
        console.print(f"stopped: {outcome.failure}", markup=False, highlight=False)
    console.print(f"evidence run {outcome.run_id}")
