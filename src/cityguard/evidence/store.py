"""The evidence store: every SQL statement, written once for SQLite and PostgreSQL alike.

Backends differ only in how they connect, their placeholder and a few type details, so the
auditor-facing behaviour (what is kept, how it is read back) cannot drift between them. The
schema is versioned and migrated on open; a store written by a newer cityguard is refused
rather than half-understood.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cityguard.core.records import CheckResult, ControlResult, Outcome
from cityguard.evidence.db import Connection, Cursor, Database
from cityguard.evidence.errors import EvidenceError, UnknownRun
from cityguard.evidence.model import RunRecord, format_time
from cityguard.evidence.schema import (
    CHECK_COLUMNS,
    MIGRATIONS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    check_from_row,
    check_to_row,
    dump_json,
    run_from_row,
    run_to_row,
)

logger = logging.getLogger(__name__)


class EvidenceStore(Database):
    """Runs and their check and control results, the same on every backend.

    Subclasses connect, then call ``super().__init__(connection)``, which migrates the schema.
    Results may only be added while a run is unfinished, so a finished record stays as it was.
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
                cur, f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({_marks(12)})", run_to_row(run)
            )

    def add_check_results(self, run_id: str, results: Iterable[CheckResult]) -> None:
        """Append check results in one transaction: a batch is stored whole or not at all."""
        checks = list(results)
        with self._transaction(write=True) as cur:
            self._require_run(cur, run_id, unfinished=True)
            seq = self._next_seq(cur, "check_results", run_id)
            for offset, check in enumerate(checks):
                self._insert_check(cur, run_id, seq + offset, check)

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
                    "INSERT INTO control_results (id, run_id, seq, control_id, host, outcome,"
                    " reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        control_row,
                        run_id,
                        control_seq,
                        control.control_id,
                        control.host,
                        control.outcome.value,
                        control.reason,
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
            checks = dict(self._load_checks(cur, run_id))
            self._execute(
                cur,
                "SELECT l.control_result_id, l.check_result_id FROM control_checks l"
                " JOIN control_results c ON c.id = l.control_result_id"
                " WHERE c.run_id = ? ORDER BY l.control_result_id, l.position",
                [run_id],
            )
            attached: dict[str, list[CheckResult]] = {}
            for control_row, check_row in cur.fetchall():
                attached.setdefault(control_row, []).append(checks[check_row])
            self._execute(
                cur,
                "SELECT id, control_id, host, outcome, reason FROM control_results"
                " WHERE run_id = ? ORDER BY seq",
                [run_id],
            )
            rows = cur.fetchall()
        return [
            ControlResult(control_id, host, Outcome(outcome), tuple(attached.get(row, ())), reason)
            for row, control_id, host, outcome, reason in rows
        ]

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
                self._execute(
                    cur,
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    [version, format_time(datetime.now(UTC))],
                )

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
            f"INSERT INTO check_results (id, run_id, seq, {CHECK_COLUMNS}) VALUES ({_marks(11)})",
            [row_id, run_id, seq, *check_to_row(check)],
        )
        return row_id

    def _load_checks(self, cur: Cursor, run_id: str) -> list[tuple[str, CheckResult]]:
        self._execute(
            cur,
            f"SELECT id, {CHECK_COLUMNS} FROM check_results WHERE run_id = ? ORDER BY seq",
            [run_id],
        )
        return [(row[0], check_from_row(row[1:])) for row in cur.fetchall()]


def _marks(count: int) -> str:
    return ", ".join("?" * count)
