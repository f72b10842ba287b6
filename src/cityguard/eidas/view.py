"""Rendering of the eidas commands: tables for people, JSON for machines."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from cityguard.eidas.action import EidasOutcome, render_plan_text


def as_json(outcome: EidasOutcome) -> dict[str, Any]:
    document: dict[str, Any] = {
        "run_id": outcome.run_id,
        "command": outcome.command,
        "realm": outcome.realm,
        "exit_code": int(outcome.exit_code),
    }
    if outcome.plan is not None:
        document["changes"] = [
            {
                "object": c.key,
                "action": str(c.action),
                "fields": [f.render() for f in c.fields],
            }
            for c in outcome.plan.changes
        ]
    if outcome.results:
        document["results"] = [
            {
                "control": r.control_id,
                "subject": str(r.subject),
                "outcome": str(r.outcome),
                "observed": r.checks[0].observed if r.checks else None,
                "expected": r.checks[0].expected if r.checks else None,
            }
            for r in outcome.results
        ]
    if outcome.command == "verify":
        document["baseline"] = outcome.baseline
        document["not_judged"] = [
            {"control": control, "title": title} for control, title in outcome.not_judged
        ]
    if outcome.export_path is not None:
        document["export"] = str(outcome.export_path)
    return document


def show(console: Console, outcome: EidasOutcome, fmt: str = "table") -> None:
    if fmt == "json":
        console.print_json(json.dumps(as_json(outcome)))
        return
    if outcome.plan is not None:
        console.print(render_plan_text(outcome.plan), markup=False, highlight=False, end="")
        verb = "would change" if outcome.command == "plan" else "changed"
        console.print(f"{outcome.plan.count()} object(s) {verb}", markup=False)
    if outcome.results:
        table = Table(title=f"eIDAS rules: realm {outcome.realm}")
        for column in ("control", "subject", "outcome", "observed"):
            table.add_column(column, overflow="fold")
        for r in outcome.results:
            observed = r.checks[0].observed if r.checks else ""
            table.add_row(r.control_id, str(r.subject), str(r.outcome), observed or "")
        console.print(table)
    if outcome.not_judged:
        console.print(
            f"eIDAS rules not judged by baseline {outcome.baseline}:",
            markup=False,
        )
        for control, title in outcome.not_judged:
            console.print(f"  {control}  {title}", markup=False, highlight=False)
    if outcome.export_path is not None:
        console.print(f"exported to {outcome.export_path}", markup=False)
    console.print(f"run {outcome.run_id}", markup=False, style="dim")
