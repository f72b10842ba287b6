"""How evidence is shown: rich tables for people, JSON for machines. No logic about outcomes.

Shared by every command that shows results (check, evidence show, and the areas to come), so a
result looks the same wherever it is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from cityguard.core.records import ControlResult, Outcome, summarize
from cityguard.evidence.model import RunRecord

if TYPE_CHECKING:
    from cityguard.verify.runner import HostRun

STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "red",
    Outcome.ERROR: "magenta",
    Outcome.WAIVED: "yellow",
    Outcome.NOT_APPLICABLE: "dim",
}


def check_summary(
    console: Console, controls: list[ControlResult], hosts: list[HostRun], run_id: str
) -> None:
    table = Table(title="Controls per host")
    table.add_column("host")
    for outcome in Outcome:
        table.add_column(outcome.value, justify="right", style=STYLE[outcome])
    counts = summarize(controls)
    for host in sorted(counts):
        table.add_row(host, *(str(counts[host][o]) for o in Outcome))
    console.print(table)
    for host_run in hosts:
        if host_run.problem:
            console.print(f"[magenta]{host_run.host}[/]: {host_run.problem}")
    problems = [c for c in controls if c.outcome in (Outcome.FAIL, Outcome.ERROR)]
    if problems:
        detail = Table(title="Controls that did not pass")
        for column in ("host", "control", "outcome", "observed / reason"):
            detail.add_column(column, overflow="fold")
        for c in problems:
            seen = c.reason or c.observed
            detail.add_row(c.host, c.control_id, f"[{STYLE[c.outcome]}]{c.outcome}[/]", seen)
        console.print(detail)
    console.print(f"evidence run {run_id}")


def controls_json(controls: Iterable[ControlResult], run_id: str) -> str:
    def control(c: ControlResult) -> dict[str, Any]:
        return {
            "control": c.control_id,
            "host": c.host,
            "outcome": c.outcome.value,
            "reason": c.reason,
            "checks": [
                {**asdict(k), "outcome": k.outcome.value, "controls": list(k.controls)}
                for k in c.checks
            ],
        }

    return json.dumps({"run": run_id, "controls": [control(c) for c in controls]}, indent=2)


def runs_table(console: Console, runs: list[RunRecord]) -> None:
    table = Table(title="Evidence runs (newest first)")
    for column in ("run", "started (UTC)", "command", "operator", "hosts", "exit", "commit"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.id,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.command,
            run.operator,
            str(len(run.hosts)),
            "-" if run.exit_code is None else str(run.exit_code),
            (run.content_commit or "-")[:12],
        )
    console.print(table)
