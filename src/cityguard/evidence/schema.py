"""The evidence schema: its migrations, and how records and results map to rows.

JSON fields are stored as text and times as ISO-8601 UTC text, so both backends hold the
same bytes and an auditor can read a store with any SQL client.

Tables (schema 2):

- ``runs``: one row per command run; ``baseline`` and ``parameters`` (JSON) say what the run
  was judged against, NULL for runs recorded at schema 1;
- ``check_results``, ``control_results`` (linked by ``control_checks``): results about a
  subject, named by ``host`` and typed by ``subject_kind`` (``host`` for every schema-1 row);
- ``steps``: timed procedure steps; ``measurements``: named numbers with unit and target;
  ``changes``: what a run changed, per subject and control, with the diff;
  ``artifacts``: the files in the run's directory with their SHA-256;
- ``run_subjects``: every subject a run concerned (its hosts and the subject of every record
  added), so "the last run of each command per subject" is one indexed query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cityguard.core.records import (
    Change,
    CheckResult,
    Comparison,
    Measurement,
    Outcome,
    Step,
    Subject,
    SubjectKind,
)
from cityguard.evidence.artifacts import Artifact
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
    (
        # what each run was judged against; NULL: recorded before the store kept it
        "ALTER TABLE runs ADD COLUMN baseline TEXT",
        "ALTER TABLE runs ADD COLUMN parameters TEXT",
        # every result so far was about a host, so the default gives old rows their meaning
        "ALTER TABLE check_results ADD COLUMN subject_kind TEXT NOT NULL DEFAULT 'host'",
        "ALTER TABLE control_results ADD COLUMN subject_kind TEXT NOT NULL DEFAULT 'host'",
        "CREATE INDEX control_results_control ON control_results (control_id, subject_kind, host)",
        "CREATE INDEX control_results_subject ON control_results (subject_kind, host, control_id)",
        """CREATE TABLE steps (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
            name TEXT NOT NULL, subject_kind TEXT NOT NULL, subject_name TEXT NOT NULL,
            started_at TEXT NOT NULL, finished_at TEXT NOT NULL, outcome TEXT NOT NULL,
            detail TEXT, PRIMARY KEY (run_id, seq))""",
        """CREATE TABLE measurements (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
            name TEXT NOT NULL, subject_kind TEXT NOT NULL, subject_name TEXT NOT NULL,
            value {float} NOT NULL, unit TEXT NOT NULL, target {float}, comparison TEXT,
            PRIMARY KEY (run_id, seq))""",
        "CREATE INDEX measurements_series ON measurements (name, subject_kind, subject_name)",
        """CREATE TABLE changes (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
            subject_kind TEXT NOT NULL, subject_name TEXT NOT NULL, control_id TEXT,
            description TEXT NOT NULL, diff TEXT, PRIMARY KEY (run_id, seq))""",
        "CREATE INDEX changes_subject ON changes (subject_kind, subject_name, control_id)",
        """CREATE TABLE artifacts (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, path TEXT NOT NULL,
            sha256 TEXT NOT NULL, size BIGINT NOT NULL, media_type TEXT NOT NULL,
            PRIMARY KEY (run_id, path))""",
        """CREATE TABLE run_subjects (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            subject_kind TEXT NOT NULL, subject_name TEXT NOT NULL,
            PRIMARY KEY (run_id, subject_kind, subject_name))""",
        "CREATE INDEX run_subjects_subject ON run_subjects (subject_kind, subject_name)",
        # schema-1 results name their run's subjects; the runs' host lists (JSON) are added by
        # the store right after these statements, in the same transaction (see _backfill)
        """INSERT INTO run_subjects (run_id, subject_kind, subject_name)
            SELECT run_id, 'host', host FROM check_results
            UNION SELECT run_id, 'host', host FROM control_results""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

RUN_COLUMNS = (
    "id, site, command, operator, started_at, finished_at, exit_code, content_commit, "
    "tool_versions, hosts, artifacts_dir, summary, baseline, parameters"
)
CHECK_COLUMNS = (
    "check_id, host, controls, outcome, observed, expected, reason, duration_s, subject_kind"
)
CONTROL_COLUMNS = "control_id, host, outcome, reason, subject_kind"
STEP_COLUMNS = "name, subject_kind, subject_name, started_at, finished_at, outcome, detail"
MEASUREMENT_COLUMNS = "name, subject_kind, subject_name, value, unit, target, comparison"
CHANGE_COLUMNS = "subject_kind, subject_name, control_id, description, diff"
ARTIFACT_COLUMNS = "path, sha256, size, media_type"


def prefixed(columns: str, alias: str) -> str:
    """A column list qualified with a table alias, for queries joining several tables."""
    return ", ".join(f"{alias}.{column}" for column in columns.split(", "))


def width(columns: str) -> int:
    """How many columns a column list names."""
    return len(columns.split(", "))


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
        run.baseline,
        dump_json(run.parameters) if run.parameters is not None else None,
    ]


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """The inverse of run_to_row."""
    (run_id, site, command, operator, started, finished, exit_code, commit,
     versions, hosts, artifacts, summary, baseline, parameters) = row  # fmt: skip
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
        baseline=baseline,
        parameters=json.loads(parameters) if parameters is not None else None,
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
        check.subject_kind.value,
    ]


def check_from_row(row: Sequence[Any]) -> CheckResult:
    """The inverse of check_to_row."""
    check_id, host, controls, outcome, observed, expected, reason, duration, kind = row
    return CheckResult(
        check_id=check_id,
        host=host,
        controls=tuple(json.loads(controls)),
        outcome=Outcome(outcome),
        observed=observed,
        expected=expected,
        reason=reason,
        duration_s=float(duration),
        subject_kind=SubjectKind(kind),
    )


def subject_to_row(subject: Subject) -> list[object]:
    """The (subject_kind, name) pair every subject-bearing row starts its subject with."""
    return [subject.kind.value, subject.name]


def step_to_row(step: Step) -> list[object]:
    """Values in STEP_COLUMNS order."""
    return [
        step.name,
        *subject_to_row(step.subject),
        format_time(step.started_at),
        format_time(step.finished_at),
        step.outcome.value,
        step.detail,
    ]


def step_from_row(row: Sequence[Any]) -> Step:
    """The inverse of step_to_row."""
    name, kind, subject, started, finished, outcome, detail = row
    return Step(
        name=name,
        subject=Subject(SubjectKind(kind), subject),
        started_at=parse_time(started),
        finished_at=parse_time(finished),
        outcome=Outcome(outcome),
        detail=detail,
    )


def measurement_to_row(measurement: Measurement) -> list[object]:
    """Values in MEASUREMENT_COLUMNS order."""
    comparison = measurement.comparison
    return [
        measurement.name,
        *subject_to_row(measurement.subject),
        measurement.value,
        measurement.unit,
        measurement.target,
        comparison.value if comparison is not None else None,
    ]


def measurement_from_row(row: Sequence[Any]) -> Measurement:
    """The inverse of measurement_to_row."""
    name, kind, subject, value, unit, target, comparison = row
    return Measurement(
        name=name,
        value=float(value),
        unit=unit,
        subject=Subject(SubjectKind(kind), subject),
        target=float(target) if target is not None else None,
        comparison=Comparison(comparison) if comparison is not None else None,
    )


def change_to_row(change: Change) -> list[object]:
    """Values in CHANGE_COLUMNS order."""
    return [*subject_to_row(change.subject), change.control_id, change.description, change.diff]


def change_from_row(row: Sequence[Any]) -> Change:
    """The inverse of change_to_row."""
    kind, subject, control_id, description, diff = row
    return Change(Subject(SubjectKind(kind), subject), control_id, description, diff)


def artifact_to_row(artifact: Artifact) -> list[object]:
    """Values in ARTIFACT_COLUMNS order."""
    return [artifact.path, artifact.sha256, artifact.size, artifact.media_type]


def artifact_from_row(row: Sequence[Any]) -> Artifact:
    """The inverse of artifact_to_row."""
    path, sha256, size, media = row
    return Artifact(path, sha256, int(size), media)
