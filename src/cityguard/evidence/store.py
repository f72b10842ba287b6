"""The evidence store: every SQL statement, written once for SQLite and PostgreSQL alike.

Backends differ only in how they connect, their placeholder and a few type details, so the
auditor-facing behaviour (what is kept, how it is read back) cannot drift between them. The
schema is versioned and migrated on open; a store written by a newer cityguard is refused
rather than half-understood.

Besides one run's records, the store answers the questions reports ask across runs (the trend
queries): a control's results over time, everything about one subject, a measurement's series,
and the last run of each command per subject.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from cityguard.core.records import (
    Change,
    CheckResult,
    ControlResult,
    Measurement,
    Outcome,
    Step,
    Subject,
    SubjectKind,
)
from cityguard.evidence.artifacts import Artifact
from cityguard.evidence.db import Connection, Cursor, Database
from cityguard.evidence.errors import EvidenceError, UnknownRun
from cityguard.evidence.model import (
    LastRun,
    RecordedMeasurement,
    RecordedResult,
    RunRecord,
    format_time,
    parse_time,
)
from cityguard.evidence.schema import (
    ARTIFACT_COLUMNS,
    CHANGE_COLUMNS,
    CHECK_COLUMNS,
    CONTROL_COLUMNS,
    MEASUREMENT_COLUMNS,
    MIGRATIONS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    STEP_COLUMNS,
    artifact_from_row,
    artifact_to_row,
    change_from_row,
    change_to_row,
    check_from_row,
    check_to_row,
    dump_json,
    measurement_from_row,
    measurement_to_row,
    prefixed,
    run_from_row,
    run_to_row,
    step_from_row,
    step_to_row,
    width,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Most ids one "IN (...)" list carries; far below every backend's parameter limit.
_IN_CHUNK = 500
#: Trend queries return at most this many rows unless told otherwise.
DEFAULT_LIMIT = 100


class EvidenceStore(Database):
    """Runs and everything they recorded, the same on every backend.

    Subclasses connect, then call ``super().__init__(connection)``, which migrates the schema.
    Records may only be added while a run is unfinished, so a finished record stays as it was;
    each kind of record keeps the order it was added in.
    """

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def _lock_schema(self, cur: Cursor) -> None:
        """Serialise concurrent migrations; BEGIN IMMEDIATE already does it for SQLite."""

    # -- writing ---------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> None:
        """Record a run as it starts, so even a crashed run leaves evidence that it began."""
        with self._transaction(write=True) as cur:
            self._execute(cur, "SELECT 1 FROM runs WHERE id = ?", [run.id])
            if cur.fetchone() is not None:
                raise EvidenceError(f"evidence run {run.id} is already recorded")
            self._execute(
                cur,
                f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({_marks(width(RUN_COLUMNS))})",
                run_to_row(run),
            )
            self._note_subjects(cur, run.id, (Subject.host(host) for host in run.hosts if host))

    def add_check_results(self, run_id: str, results: Iterable[CheckResult]) -> None:
        """Append check results in one transaction: a batch is stored whole or not at all."""
        checks = list(results)
        with self._transaction(write=True) as cur:
            self._require_run(cur, run_id, unfinished=True)
            seq = self._next_seq(cur, "check_results", run_id)
            for offset, check in enumerate(checks):
                self._insert_check(cur, run_id, seq + offset, check)
            self._note_subjects(cur, run_id, (check.subject for check in checks))

    def add_control_results(self, run_id: str, results: Iterable[ControlResult]) -> None:
        """Store controls with links to their checks; checks not yet stored are added too."""
        controls = list(results)
        with self._transaction(write=True) as cur:
            self._require_run(cur, run_id, unfinished=True)
            known = {check: row_id for row_id, check in self._load_checks(cur, run_id)}
            check_seq = self._next_seq(cur, "check_results", run_id)
            control_seq = self._next_seq(cur, "control_results", run_id)
            for control in controls:
                control_row = uuid.uuid4().hex
                self._execute(
                    cur,
                    f"INSERT INTO control_results (id, run_id, seq, {CONTROL_COLUMNS})"
                    f" VALUES ({_marks(3 + width(CONTROL_COLUMNS))})",
                    [
                        control_row,
                        run_id,
                        control_seq,
                        control.control_id,
                        control.host,
                        control.outcome.value,
                        control.reason,
                        control.subject_kind.value,
                    ],
                )
                control_seq += 1
                for position, check in enumerate(control.checks):
                    check_row = known.get(check)
                    if check_row is None:
                        check_row = self._insert_check(cur, run_id, check_seq, check)
                        known[check] = check_row
                        check_seq += 1
                    self._execute(
                        cur,
                        "INSERT INTO control_checks (control_result_id, position, check_result_id)"
                        " VALUES (?, ?, ?)",
                        [control_row, position, check_row],
                    )
            self._note_subjects(cur, run_id, (control.subject for control in controls))

    def add_steps(self, run_id: str, steps: Iterable[Step]) -> None:
        """Append timed steps (drill phases, rollout batches), stored whole or not at all."""
        items = list(steps)
        rows = [step_to_row(step) for step in items]
        self._append(run_id, "steps", STEP_COLUMNS, rows, [step.subject for step in items])

    def add_measurements(self, run_id: str, measurements: Iterable[Measurement]) -> None:
        """Append measurements, stored whole or not at all."""
        items = list(measurements)
        rows = [measurement_to_row(m) for m in items]
        self._append(run_id, "measurements", MEASUREMENT_COLUMNS, rows, [m.subject for m in items])

    def add_changes(self, run_id: str, changes: Iterable[Change]) -> None:
        """Append what the run changed, stored whole or not at all."""
        items = list(changes)
        rows = [change_to_row(change) for change in items]
        self._append(run_id, "changes", CHANGE_COLUMNS, rows, [c.subject for c in items])

    def add_artifacts(self, run_id: str, artifacts: Iterable[Artifact]) -> None:
        """Record files of the run directory; the recorder does it once, right before finish.

        A path can be recorded once per run: a second record of it is an EvidenceError, since
        two fingerprints of one file would leave an auditor guessing which one is true.
        """
        rows = [artifact_to_row(artifact) for artifact in artifacts]
        with self._transaction(write=True) as cur:
            self._require_run(cur, run_id, unfinished=True)
            for row in rows:
                self._execute(
                    cur,
                    f"INSERT INTO artifacts (run_id, {ARTIFACT_COLUMNS})"
                    f" VALUES ({_marks(1 + width(ARTIFACT_COLUMNS))})",
                    [run_id, *row],
                )

    def finish_run(
        self,
        run_id: str,
        exit_code: int,
        summary: dict[str, Any] | None = None,
        *,
        finished_at: datetime | None = None,
    ) -> None:
        """Mark the run finished (now, unless given); a summary given here replaces the old one."""
        when = format_time(finished_at or datetime.now(UTC))
        with self._transaction(write=True) as cur:
            self._require_run(cur, run_id, unfinished=True)
            sets, params = "finished_at = ?, exit_code = ?", [when, exit_code]
            if summary is not None:
                sets, params = sets + ", summary = ?", [*params, dump_json(summary)]
            self._execute(cur, f"UPDATE runs SET {sets} WHERE id = ?", [*params, run_id])

    # -- reading ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        """The run as recorded; UnknownRun (a KeyError) if there is none with this id."""
        with self._transaction() as cur:
            self._execute(cur, f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [run_id])
            row = cur.fetchone()
        if row is None:
            raise UnknownRun(run_id)
        return run_from_row(row)

    def list_runs(self, limit: int = 20, command: str | None = None) -> list[RunRecord]:
        """Newest first (by start time); only runs of exactly ``command`` when given."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        where, params = ("WHERE command = ? ", [command]) if command is not None else ("", [])
        with self._transaction() as cur:
            self._execute(
                cur,
                f"SELECT {RUN_COLUMNS} FROM runs {where}ORDER BY started_at DESC, id DESC LIMIT ?",
                [*params, limit],
            )
            rows = cur.fetchall()
        return [run_from_row(row) for row in rows]

    def latest_run(self, command: str) -> RunRecord | None:
        """The most recently started run of this command, finished or not."""
        runs = self.list_runs(limit=1, command=command)
        return runs[0] if runs else None

    def check_results(self, run_id: str) -> list[CheckResult]:
        """Every check result of the run, in the order they were added."""
        with self._transaction() as cur:
            self._require_run(cur, run_id)
            return [check for _, check in self._load_checks(cur, run_id)]

    def control_results(self, run_id: str) -> list[ControlResult]:
        """Every control result of the run, in the order added, with its checks attached."""
        with self._transaction() as cur:
            self._require_run(cur, run_id)
            found = self._select_controls(cur, "c.run_id = ?", [run_id], "c.seq")
            checks = self._attached_checks(cur, "c.run_id = ?", [run_id])
        return [_with_checks(recorded.result, checks.get(row, [])) for row, recorded in found]

    def steps(self, run_id: str) -> list[Step]:
        """The run's steps, in the order added."""
        return self._read(run_id, "steps", STEP_COLUMNS, step_from_row)

    def measurements(self, run_id: str) -> list[Measurement]:
        """The run's measurements, in the order added."""
        return self._read(run_id, "measurements", MEASUREMENT_COLUMNS, measurement_from_row)

    def changes(self, run_id: str) -> list[Change]:
        """What the run changed, in the order added."""
        return self._read(run_id, "changes", CHANGE_COLUMNS, change_from_row)

    def artifacts(self, run_id: str) -> list[Artifact]:
        """The files recorded for the run, by path."""
        with self._transaction() as cur:
            self._require_run(cur, run_id)
            self._execute(
                cur,
                f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE run_id = ? ORDER BY path",
                [run_id],
            )
            return [artifact_from_row(row) for row in cur.fetchall()]

    # -- across runs (trends) --------------------------------------------------------------

    def results_for_control(
        self, control_id: str, subject: Subject | None = None, *, limit: int = DEFAULT_LIMIT
    ) -> list[RecordedResult]:
        """A control's results across runs, newest run first, each with its checks and run;
        only those about ``subject`` when given. At most ``limit`` results."""
        where, params = "c.control_id = ?", [control_id]
        if subject is not None:
            where, params = (
                where + " AND c.subject_kind = ? AND c.host = ?",
                [
                    *params,
                    subject.kind.value,
                    subject.name,
                ],
            )
        return self._recorded_results(where, params, limit)

    def results_for_subject(
        self, kind: SubjectKind | str, name: str, *, limit: int = DEFAULT_LIMIT
    ) -> list[RecordedResult]:
        """Every control result about one subject across runs, newest run first (within a run
        in the order added), each with its checks and run. At most ``limit`` results."""
        subject = Subject(SubjectKind(kind), name)
        where = "c.subject_kind = ? AND c.host = ?"
        return self._recorded_results(where, [subject.kind.value, subject.name], limit)

    def measurement_series(
        self, name: str, subject: Subject | None = None, *, limit: int = DEFAULT_LIMIT
    ) -> list[RecordedMeasurement]:
        """The latest ``limit`` measurements named ``name`` (about ``subject`` when given), in
        time order, oldest first, as a trend is drawn; each with the run that took it."""
        _check_limit(limit)
        where, params = "m.name = ?", [name]
        if subject is not None:
            where += " AND m.subject_kind = ? AND m.subject_name = ?"
            params += [subject.kind.value, subject.name]
        with self._transaction() as cur:
            self._execute(
                cur,
                f"SELECT r.id, r.started_at, r.command, {prefixed(MEASUREMENT_COLUMNS, 'm')}"
                f" FROM measurements m JOIN runs r ON r.id = m.run_id WHERE {where}"
                " ORDER BY r.started_at DESC, r.id DESC, m.seq DESC LIMIT ?",
                [*params, limit],
            )
            rows = cur.fetchall()
        points = [
            RecordedMeasurement(run_id, parse_time(started), command, measurement_from_row(rest))
            for run_id, started, command, *rest in rows
        ]
        return points[::-1]

    def last_runs(self, command: str | None = None) -> list[LastRun]:
        """The most recent run of each command for each subject it concerned (its hosts and
        the subject of every record it added), finished or not; only ``command``'s when given.
        Sorted by command, subject kind, subject name."""
        where, params = ("WHERE x.command = ?", [command]) if command is not None else ("", [])
        with self._transaction() as cur:
            self._execute(
                cur,
                f"SELECT s.subject_kind, s.subject_name, {prefixed(RUN_COLUMNS, 'r')}"
                " FROM (SELECT rs.run_id, rs.subject_kind, rs.subject_name, ROW_NUMBER() OVER"
                " (PARTITION BY x.command, rs.subject_kind, rs.subject_name"
                " ORDER BY x.started_at DESC, x.id DESC) AS n"
                f" FROM run_subjects rs JOIN runs x ON x.id = rs.run_id {where}) s"
                " JOIN runs r ON r.id = s.run_id WHERE s.n = 1",
                params,
            )
            rows = cur.fetchall()
        found = [
            LastRun(Subject(SubjectKind(kind), name), run_from_row(rest))
            for kind, name, *rest in rows
        ]
        # sorted here, not in SQL: text collation differs between servers, Python's does not
        return sorted(found, key=lambda last: (last.command, last.subject.kind, last.subject.name))

    def schema_version(self) -> int:
        """The schema version the store is at (after the migrations applied on open)."""
        with self._transaction() as cur:
            return self._current_version(cur)

    # -- internals -------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction(write=True) as cur:
            self._lock_schema(cur)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version"
                " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self._current_version(cur)
            if current > SCHEMA_VERSION:
                raise EvidenceError(
                    f"evidence store schema version {current} is newer than this cityguard"
                    f" supports ({SCHEMA_VERSION})"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                logger.info("evidence store %s: migrating to schema %d", self.location, version)
                for statement in MIGRATIONS[version - 1]:
                    cur.execute(statement.format(float=self.float_type))
                self._backfill(cur, version)
                self._execute(
                    cur,
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    [version, format_time(datetime.now(UTC))],
                )

    def _backfill(self, cur: Cursor, version: int) -> None:
        """What a migration cannot do in SQL both backends share, done right after its
        statements in the same transaction. Schema 2: each run's hosts (a JSON list) become
        its host subjects, so runs without any result (e.g. a harden run) are found too."""
        if version != 2:
            return
        self._execute(cur, "SELECT id, hosts FROM runs")
        for run_id, hosts in cur.fetchall():
            names = [str(host) for host in json.loads(hosts) if host]
            self._note_subjects(cur, run_id, (Subject.host(name) for name in names))

    def _current_version(self, cur: Cursor) -> int:
        cur.execute("SELECT MAX(version) FROM schema_version")
        row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _require_run(self, cur: Cursor, run_id: str, *, unfinished: bool = False) -> None:
        self._execute(cur, "SELECT finished_at FROM runs WHERE id = ?", [run_id])
        row = cur.fetchone()
        if row is None:
            raise UnknownRun(run_id)
        if unfinished and row[0] is not None:
            raise EvidenceError(f"evidence run {run_id} finished at {row[0]}; it is closed")

    def _next_seq(self, cur: Cursor, table: str, run_id: str) -> int:
        self._execute(cur, f"SELECT MAX(seq) FROM {table} WHERE run_id = ?", [run_id])
        row = cur.fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def _insert_check(self, cur: Cursor, run_id: str, seq: int, check: CheckResult) -> str:
        row_id = uuid.uuid4().hex
        self._execute(
            cur,
            f"INSERT INTO check_results (id, run_id, seq, {CHECK_COLUMNS})"
            f" VALUES ({_marks(3 + width(CHECK_COLUMNS))})",
            [row_id, run_id, seq, *check_to_row(check)],
        )
        return row_id

    def _note_subjects(self, cur: Cursor, run_id: str, subjects: Iterable[Subject]) -> None:
        """Remember that the run concerned these subjects (each once), for last_runs."""
        for subject in dict.fromkeys(subjects):
            self._execute(
                cur,
                "INSERT INTO run_subjects (run_id, subject_kind, subject_name) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [run_id, subject.kind.value, subject.name],
            )

    def _append(
        self,
        run_id: str,
        table: str,
        columns: str,
        rows: Sequence[Sequence[object]],
        subjects: Iterable[Subject],
    ) -> None:
        """Add rows to a per-run table, numbered on from what the run already has."""
        with self._transaction(write=True) as cur:
            self._require_run(cur, run_id, unfinished=True)
            seq = self._next_seq(cur, table, run_id)
            for offset, row in enumerate(rows):
                self._execute(
                    cur,
                    f"INSERT INTO {table} (run_id, seq, {columns})"
                    f" VALUES ({_marks(2 + width(columns))})",
                    [run_id, seq + offset, *row],
                )
            self._note_subjects(cur, run_id, subjects)

    def _read(
        self, run_id: str, table: str, columns: str, from_row: Callable[[Sequence[Any]], T]
    ) -> list[T]:
        with self._transaction() as cur:
            self._require_run(cur, run_id)
            self._execute(
                cur, f"SELECT {columns} FROM {table} WHERE run_id = ? ORDER BY seq", [run_id]
            )
            return [from_row(row) for row in cur.fetchall()]

    def _select_controls(
        self,
        cur: Cursor,
        where: str,
        params: Sequence[object],
        order: str,
        limit: int | None = None,
    ) -> list[tuple[str, RecordedResult]]:
        """Control results (without checks) with their row ids and runs."""
        tail, extra = (" LIMIT ?", [limit]) if limit is not None else ("", [])
        self._execute(
            cur,
            f"SELECT c.id, r.id, r.started_at, r.command, {prefixed(CONTROL_COLUMNS, 'c')}"
            f" FROM control_results c JOIN runs r ON r.id = c.run_id WHERE {where}"
            f" ORDER BY {order}{tail}",
            [*params, *extra],
        )
        return [
            (row, RecordedResult(run_id, parse_time(started), command, _control_from_row(rest)))
            for row, run_id, started, command, *rest in cur.fetchall()
        ]

    def _attached_checks(
        self, cur: Cursor, where: str, params: Sequence[object]
    ) -> dict[str, list[CheckResult]]:
        """The checks of the control results ``where`` selects, by control row, in order."""
        self._execute(
            cur,
            f"SELECT l.control_result_id, {prefixed(CHECK_COLUMNS, 'k')} FROM control_checks l"
            " JOIN check_results k ON k.id = l.check_result_id"
            f" JOIN control_results c ON c.id = l.control_result_id WHERE {where}"
            " ORDER BY l.control_result_id, l.position",
            params,
        )
        attached: dict[str, list[CheckResult]] = {}
        for control_row, *check in cur.fetchall():
            attached.setdefault(control_row, []).append(check_from_row(check))
        return attached

    def _recorded_results(
        self, where: str, params: Sequence[object], limit: int
    ) -> list[RecordedResult]:
        _check_limit(limit)
        order = "r.started_at DESC, r.id DESC, c.seq"
        with self._transaction() as cur:
            found = self._select_controls(cur, where, params, order, limit)
            rows = [row for row, _ in found]
            checks: dict[str, list[CheckResult]] = {}
            for start in range(0, len(rows), _IN_CHUNK):
                chunk = rows[start : start + _IN_CHUNK]
                checks.update(self._attached_checks(cur, f"c.id IN ({_marks(len(chunk))})", chunk))
        return [
            RecordedResult(
                recorded.run_id,
                recorded.run_started_at,
                recorded.command,
                _with_checks(recorded.result, checks.get(row, [])),
            )
            for row, recorded in found
        ]

    def _load_checks(self, cur: Cursor, run_id: str) -> list[tuple[str, CheckResult]]:
        self._execute(
            cur,
            f"SELECT id, {CHECK_COLUMNS} FROM check_results WHERE run_id = ? ORDER BY seq",
            [run_id],
        )
        return [(row[0], check_from_row(row[1:])) for row in cur.fetchall()]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def _control_from_row(row: Sequence[Any]) -> ControlResult:
    """A control result from CONTROL_COLUMNS, checks not yet attached."""
    control_id, host, outcome, reason, kind = row
    return ControlResult(control_id, host, Outcome(outcome), (), reason, SubjectKind(kind))


def _with_checks(result: ControlResult, checks: Sequence[CheckResult]) -> ControlResult:
    return ControlResult(
        result.control_id, result.host, result.outcome, tuple(checks), result.reason,
        result.subject_kind,
    )  # fmt: skip
