"""How results are shown: rich tables for people, JSON for machines. No logic about outcomes."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cityguard.ansible import PlaybookResult
from cityguard.evidence import RunRecord
from cityguard.harden.action import controls_of_task
from cityguard.results import ControlResult, Outcome, summarize
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


def harden_summary(
    console: Console, result: PlaybookResult, check: bool, run_id: str, selected: list[str]
) -> None:
    table = Table(title="Would change (check mode)" if check else "Hardening")
    for column in ("host", "ok", "changed", "failed", "unreachable"):
        table.add_column(column, justify="right" if column != "host" else "left")
    for host, stats in sorted(result.hosts.items()):
        table.add_row(
            host, str(stats.ok), str(stats.changed), str(stats.failed), str(stats.unreachable)
        )
    console.print(table)
    if not result.hosts and result.rc != 0:
        console.print(
            f"the playbook did not run (ansible rc={result.rc}): "
            + playbook_failure(result.artifacts_dir),
            style="red",
            markup=False,
        )
    verb = "would change" if check else "changed"
    for task in result.tasks:
        if task.status == "changed":
            controls = ",".join(controls_of_task(task, selected)) or "(no control)"
            console.print(
                f"{task.host} {controls}: {verb}: {task.task}",
                style="yellow",
                markup=False,
                highlight=False,
            )
            if check:
                for diff in task.diff or []:
                    console.print(_indent(unified_diff(diff)), markup=False, highlight=False)
        elif task.status in ("failed", "unreachable"):
            console.print(f"{task.host}: {task.task}: {task.message}", style="red", markup=False)
    console.print(f"{verb}: {result.changed_total}; artifacts: {result.artifacts_dir}")
    console.print(f"evidence run {run_id}")


def playbook_failure(artifacts_dir: Path) -> str:
    """Ansible's own last words when it stopped before any host ran (e.g. a syntax error)."""
    stdout = artifacts_dir / "stdout"
    if not stdout.exists():
        return f"no output kept in {artifacts_dir}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", stdout.read_text(errors="replace"))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-4:]) or f"no output kept in {artifacts_dir}"


def unified_diff(diff: Any) -> str:
    """Ansible's before/after as a unified diff, which is what ops read in reviews."""
    if not isinstance(diff, dict):
        return str(diff)
    if "prepared" in diff:  # some modules hand over a finished diff
        return str(diff["prepared"])
    before, after = diff.get("before", ""), diff.get("after", "")
    if not isinstance(before, str) or not isinstance(after, str):
        return f"before: {before}\nafter: {after}"
    lines = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        str(diff.get("before_header", "before")),
        str(diff.get("after_header", "after")),
        lineterm="",
    )
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


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
