"""The default evidence store: one SQLite file in the site's state directory.

WAL mode lets a report read the store while a run writes to it, and foreign keys are
switched on because SQLite leaves them off per connection by default.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from cityguard.evidence.errors import EvidenceError
from cityguard.evidence.store import EvidenceStore

logger = logging.getLogger(__name__)


class SqliteStore(EvidenceStore):
    placeholder = "?"
    float_type = "REAL"
    begin_write = "BEGIN IMMEDIATE"  # take the write lock first: no deadlock on lock upgrade
    driver_error = sqlite3.Error

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit; the base class issues BEGIN/COMMIT itself
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise EvidenceError(f"cannot open evidence store {self.path}: {exc}") from exc
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            connection.close()
            raise EvidenceError(f"cannot open evidence store {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":  # e.g. a filesystem without shared memory
            logger.warning("evidence store %s: journal mode is %s, not WAL", self.path, mode)
        super().__init__(connection)

    @property
    def location(self) -> str:
        return str(self.path)
