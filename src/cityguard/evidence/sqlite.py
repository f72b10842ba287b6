"""The default evidence store: one SQLite file in the site's state directory.

WAL mode lets a report read the store while a run writes to it, and foreign keys are
switched on because SQLite leaves them off per connection by default.

The file is created 0600 (its -wal and -shm files follow its mode): evidence lists every
weakness of every server and is nobody else's to read. A store that once held runs and comes
back missing, empty or without runs is refused (cityguard.evidence.history), never silently
started afresh.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from cityguard.evidence import history
from cityguard.evidence.errors import EvidenceError
from cityguard.evidence.model import RunRecord
from cityguard.evidence.store import EvidenceStore

logger = logging.getLogger(__name__)


class SqliteStore(EvidenceStore):
    placeholder = "?"
    float_type = "REAL"
    begin_write = "BEGIN IMMEDIATE"  # take the write lock first: no deadlock on lock upgrade
    driver_error = sqlite3.Error

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        history.check_before_open(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, history.PRIVATE_FILE))
            history.make_private(self.path)
            # isolation_level=None: autocommit; the base class issues BEGIN/COMMIT itself
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise EvidenceError(f"cannot open evidence store {self.path}: {_reason(exc)}") from exc
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            connection.close()
            raise EvidenceError(f"cannot open evidence store {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":  # e.g. a filesystem without shared memory
            logger.warning("evidence store %s: journal mode is %s, not WAL", self.path, mode)
        super().__init__(connection)
        self._refuse_lost_history()

    def _refuse_lost_history(self) -> None:
        """A store with a marker but no run was replaced by an empty one: refuse it."""
        since = history.held_runs_since(self.path)
        if since is None:
            return
        if not self.list_runs(limit=1):
            self.close()
            raise history.lost_history(self.path, since, "holds no run")

    def start_run(self, run: RunRecord) -> None:
        super().start_run(run)
        try:
            history.note_first_run(self.path)
            history.make_private(self.path)
        except OSError as exc:  # the run is recorded; only the safety net is missing
            logger.warning("evidence store %s: history marker not written: %s", self.path, exc)

    @property
    def location(self) -> str:
        return str(self.path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
