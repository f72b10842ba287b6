"""How a hardening run is shown: per-host counts, each change against its controls, diffs."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cityguard.ansible.diffs import unified_diff
from cityguard.core.records import Outcome
from cityguard.harden.action import HardenOutcome, controls_of_task


def harden_summary(console: Console, outcome: HardenOutcome) -> None:
    """Per-host counts, then each change (with its diff in check mode) and each failure."""
    result, check, selected = outcome.result, outcome.check, outcome.controls
    table = Table(title="Would change (check mode)" if check else "Hardening")
    for column in ("host", "ok", "changed", "failed", "unreachable"):
        table.add_column(column, justify="right" if column != "host" else "left")
    for host, stats in sorted(result.hosts.items()):
        table.add_row(
            host, str(stats.ok), str(stats.changed), str(stats.failed), str(stats.unreachable)
        )
    console.print(table)
    if result.status == "canceled":
        made = sum(task.status == "changed" for task in result.tasks)
        console.print(
            f"interrupted (Ctrl-C): the run stopped after {len(result.tasks)} task results; "
            f"{made} change(s) {'would have been ' if check else ''}made before it stopped "
            "are listed below; every later task did not run",
            style="red",
            markup=False,
        )
    elif not result.hosts and result.rc != 0:
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
    show_verification(console, outcome)
    if outcome.evidence_problem is not None:
        console.print(
            f"evidence run {outcome.run_id}: NOT fully recorded: {outcome.evidence_problem}; "
            f"the changes above were made and are kept in {result.artifacts_dir}",
            style="red",
            markup=False,
            highlight=False,
        )
        return
    console.print(f"evidence run {outcome.run_id}")


def show_verification(console: Console, outcome: HardenOutcome) -> None:
    """After a real run: how many enforced controls hold as `check` reads them, and one line per
    failing check of each that does not: control, host, observed value and the file in force."""
    if outcome.check or not outcome.verification:
        return
    failing = outcome.still_failing
    errors = [c for c in outcome.verification if c.outcome is Outcome.ERROR]
    console.print(
        f"verified after hardening: {len(outcome.verification)} control results, "
        f"{len(failing)} still failing, {len(errors)} could not be evaluated",
        style="red" if failing else None,
        markup=False,
        highlight=False,
    )
    for control in failing:
        for check in control.checks:
            if check.outcome is Outcome.FAIL:
                console.print(
                    f"{control.host} {control.control_id}: still fails after hardening: "
                    f"{check.reason or check.observed}",
                    style="red",
                    markup=False,
                    highlight=False,
                )
    for control in errors:
        reasons = {c.reason for c in control.checks if c.outcome is Outcome.ERROR}
        console.print(
            f"{control.host} {control.control_id}: could not be verified: "
            + "; ".join(sorted(r for r in reasons if r)),
            style="yellow",
            markup=False,
            highlight=False,
        )


def playbook_failure(artifacts_dir: Path) -> str:
    """Ansible's own last words when it stopped before any host ran (e.g. a syntax error)."""
    stdout = artifacts_dir / "stdout"
    if not stdout.exists():
        return f"no output kept in {artifacts_dir}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", stdout.read_text(errors="replace"))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-4:]) or f"no output kept in {artifacts_dir}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
