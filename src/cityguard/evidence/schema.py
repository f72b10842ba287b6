"""The evidence schema: its migrations, and how records and results map to rows.

JSON fields are stored as text and times as ISO-8601 UTC text, so both backends hold the
same bytes and an auditor can read a store with any SQL client.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cityguard.core.records import CheckResult, Outcome
from cityguard.evidence.model import RunRecord, format_time, parse_time

#: Ordered migrations; entry N-1 takes the schema to version N. Never edit a released entry:
#: stores in the field are already at that version, so changes go in a new entry.
#: "{float}" is the backend's double-precision type.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, site TEXT NOT NULL, command TEXT NOT NULL,
            operator TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
            exit_code INTEGER, content_commit TEXT, tool_versions TEXT NOT NULL,
            hosts TEXT NOT NULL, artifacts_dir TEXT, summary TEXT NOT NULL)""",
        "CREATE INDEX runs_command_started ON runs (command, started_at)",
        "CREATE INDEX runs_started ON runs (started_at)",
        """CREATE TABLE check_results (
            id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, check_id TEXT NOT NULL, host TEXT NOT NULL,
            controls TEXT NOT NULL, outcome TEXT NOT NULL, observed TEXT, expected TEXT,
            reason TEXT, duration_s {float} NOT NULL, UNIQUE (run_id, seq))""",
        "CREATE INDEX check_results_run ON check_results (run_id)",
        "CREATE INDEX check_results_host_check ON check_results (host, check_id)",
        """CREATE TABLE control_results (
            id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, control_id TEXT NOT NULL, host TEXT NOT NULL,
            outcome TEXT NOT NULL, reason TEXT, UNIQUE (run_id, seq))""",
        "CREATE INDEX control_results_run ON control_results (run_id)",
        "CREATE INDEX control_results_host_control ON control_results (host, control_id)",
        # which checks each control rolled up, in order: keeps the control's evidence attached
        """CREATE TABLE control_checks (
            control_result_id TEXT NOT NULL REFERENCES control_results (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            check_result_id TEXT NOT NULL REFERENCES check_results (id) ON DELETE CASCADE,
            PRIMARY KEY (control_result_id, position))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

RUN_COLUMNS = (
    "id, site, command, operator, started_at, finished_at, exit_code, content_commit, "
    "tool_versions, hosts, artifacts_dir, summary"
)
CHECK_COLUMNS = "check_id, host, controls, outcome, observed, expected, reason, duration_s"


def dump_json(value: object) -> str:
    """JSON as text, keys sorted so identical evidence is stored identically."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def run_to_row(run: RunRecord) -> list[object]:
    """Values in RUN_COLUMNS order."""
    return [
        run.id,
        run.site,
        run.command,
        run.operator,
        format_time(run.started_at),
        format_time(run.finished_at) if run.finished_at is not None else None,
        run.exit_code,
        run.content_commit,
        dump_json(run.tool_versions),
        dump_json(run.hosts),
        run.artifacts_dir,
        dump_json(run.summary),
    ]


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """The inverse of run_to_row."""
    (run_id, site, command, operator, started, finished, exit_code, commit,
     versions, hosts, artifacts, summary) = row  # fmt: skip
    return RunRecord(
        id=run_id,
        site=site,
        command=command,
        operator=operator,
        started_at=parse_time(started),
        finished_at=parse_time(finished) if finished is not None else None,
        exit_code=exit_code,
        content_commit=commit,
        tool_versions=json.loads(versions),
        hosts=json.loads(hosts),
        artifacts_dir=artifacts,
        summary=json.loads(summary),
    )


def check_to_row(check: CheckResult) -> list[object]:
    """Values in CHECK_COLUMNS order."""
    return [
        check.check_id,
        check.host,
        dump_json(list(check.controls)),
        check.outcome.value,
        check.observed,
        check.expected,
        check.reason,
        float(check.duration_s),
    ]


def check_from_row(row: Sequence[Any]) -> CheckResult:
    """The inverse of check_to_row."""
    check_id, host, controls, outcome, observed, expected, reason, duration = row
    return CheckResult(
        check_id=check_id,
        host=host,
        controls=tuple(json.loads(controls)),
        outcome=Outcome(outcome),
        observed=observed,
        expected=expected,
        reason=reason,
        duration_s=float(duration),
    )
