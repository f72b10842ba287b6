"""How backups, drills and their status are shown: tables for people, JSON for machines."""

from __future__ import annotations

import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from cityguard.drill.action import BackupOutcome, DrillOutcome
from cityguard.drill.durations import format_duration
from cityguard.drill.status import CONTROL_NODE, StatusRow


def backup_summary(console: Console, outcome: BackupOutcome, fmt: str = "table") -> None:
    if fmt == "json":
        data = {
            "run_id": outcome.run_id,
            "system": outcome.system,
            "set": outcome.set_id,
            "exit_code": int(outcome.exit_code),
            "bytes": outcome.bytes,
            "duration_s": round(outcome.duration_s, 3),
            "sources": {name: asdict(r) for name, r in outcome.sources.items()},
        }
        console.print_json(json.dumps(data))
        return
    table = Table(title=f"Backup of {outcome.system} (set {outcome.set_id})")
    for column in ("source", "kind", "host", "snapshot", "bytes"):
        table.add_column(column)
    for name, record in outcome.sources.items():
        table.add_row(name, record.kind, record.host, record.snapshot[:8], str(record.bytes))
    console.print(table)
    console.print(
        f"{outcome.bytes} bytes in {format_duration(outcome.duration_s)}; run {outcome.run_id}",
        markup=False,
    )


def drill_summary(console: Console, outcome: DrillOutcome, fmt: str = "table") -> None:
    report = outcome.report
    if fmt == "json":
        console.print_json(json.dumps({"run_id": outcome.run_id, **report.to_dict()}, default=str))
        return
    table = Table(title=f"Drill of {outcome.system}: {report.result.upper()}")
    for column in ("step", "outcome", "duration", "detail"):
        table.add_column(column)
    for step in report.to_dict()["steps"]:
        table.add_row(
            step["name"], step["outcome"], format_duration(step["duration_s"]), step["detail"] or ""
        )
    console.print(table)
    for m in report.measurements:
        value = format_duration(m["value"]) if m["unit"] == "s" else f"{m['value']:.0f} {m['unit']}"
        target = ""
        if m["target"] is not None:
            target = f" (target {format_duration(m['target'])}: {'met' if m['met'] else 'NOT met'})"
        console.print(f"{m['name']}: {value}{target}", markup=False)
    for finding in report.findings:
        console.print(f"finding: {finding.step}: {finding.deviation}", style="red", markup=False)
        console.print(f"  action ({finding.owner}): {finding.corrective_action}", markup=False)
    for warning in report.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
    console.print(f"run {outcome.run_id}", markup=False)


def status_table(console: Console, rows: list[StatusRow], fmt: str = "table") -> None:
    if fmt == "json":
        console.print_json(
            json.dumps([asdict(r) | {"rpo_met": r.rpo_met} for r in rows], default=str)
        )
        return
    table = Table(title="Disaster recovery status")
    for column in (
        "system",
        "last backup",
        "age / RPO",
        "last drill",
        "RTO / target",
        "next backup",
        "next drill",
        "next off-site job",
    ):
        table.add_column(column)
    for r in rows:
        age = (
            "never"
            if r.backup_age_s is None
            else f"{format_duration(r.backup_age_s)} / {format_duration(r.rpo_target_s)}"
            + ("" if r.rpo_met else " BREACH")
        )
        rto = (
            ""
            if r.last_rto_s is None
            else f"{format_duration(r.last_rto_s)} / {format_duration(r.rto_target_s)}"
        )
        last = r.last_backup_at.isoformat(timespec="seconds") if r.last_backup_at else "never"
        if r.backup_problem:
            last = f"unknown: {r.backup_problem}"
        if r.backup_on != CONTROL_NODE:
            last += f" (pushed by {r.backup_on})"
        table.add_row(
            r.system,
            last,
            age,
            r.last_drill_result or "never",
            rto,
            r.next_backup or "",
            r.next_drill or "",
            r.next_offsite or "",
        )
    console.print(table)
