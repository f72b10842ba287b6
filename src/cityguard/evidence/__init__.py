"""The evidence store: what every cityguard run did, kept for auditors.

SQLite in the site's state directory by default; PostgreSQL when operators share a store.
Both behave the same, because every statement lives once in EvidenceStore.
"""

from __future__ import annotations

from pathlib import Path

from cityguard.evidence.errors import EvidenceError, UnknownRun
from cityguard.evidence.model import RunRecord, content_commit, new_run, tool_versions
from cityguard.evidence.schema import SCHEMA_VERSION
from cityguard.evidence.sqlite import SqliteStore
from cityguard.evidence.store import EvidenceStore

SQLITE_FILENAME = "evidence.sqlite"

__all__ = [
    "SCHEMA_VERSION",
    "SQLITE_FILENAME",
    "EvidenceError",
    "EvidenceStore",
    "RunRecord",
    "SqliteStore",
    "UnknownRun",
    "content_commit",
    "new_run",
    "open_store",
    "tool_versions",
]


def open_store(state_dir: Path, dsn: str | None) -> EvidenceStore:
    """PostgreSQL when a DSN is configured (shared store), else SQLite in the state directory."""
    if dsn:
        from cityguard.evidence.postgres import PostgresStore  # psycopg: only when used

        return PostgresStore(dsn)
    return SqliteStore(Path(state_dir) / SQLITE_FILENAME)
