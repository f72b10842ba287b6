"""Knowing that a SQLite evidence store once held runs, so losing them is never silent.

SQLite creates a missing database on connect, so a store truncated to 0 bytes, deleted, or
replaced by an empty one would quietly start a new history and the city's evidence would be
gone without anyone being told. The first run recorded therefore leaves a marker file beside
the database; a store whose marker says it held runs but which is now missing, empty or holds no
run is refused until an operator restores it (or, knowingly, removes the marker).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cityguard.evidence.errors import EvidenceError

MARKER_SUFFIX = ".history"
PRIVATE_FILE = 0o600


def marker_for(database: Path) -> Path:
    """``evidence.sqlite`` → ``evidence.sqlite.history``."""
    return database.with_name(database.name + MARKER_SUFFIX)


def held_runs_since(database: Path) -> str | None:
    """When the store recorded its first run, if its marker says it did; else None."""
    marker = marker_for(database)
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "an unknown time (its marker is unreadable)"
    since = data.get("first_run_at") if isinstance(data, dict) else None
    return str(since) if since else "an unknown time"


def lost_history(database: Path, since: str, what: str) -> EvidenceError:
    """The error for a store that held runs and lost them: say what, and how to go on."""
    return EvidenceError(
        f"evidence store {database} {what}, but it has held runs since {since} "
        f"({marker_for(database).name} says so): restore it from a backup; to start a new, "
        f"empty history on purpose, remove {marker_for(database)}"
    )


def check_before_open(database: Path) -> None:
    """Refuse a store that held runs and is now missing or empty, before SQLite recreates it."""
    since = held_runs_since(database)
    if since is None:
        return
    try:
        size = database.stat().st_size
    except FileNotFoundError:
        raise lost_history(database, since, "is missing") from None
    except OSError as exc:
        raise EvidenceError(f"cannot open evidence store {database}: {exc.strerror}") from None
    if size == 0:
        raise lost_history(database, since, "is empty (0 bytes)")


def note_first_run(database: Path) -> None:
    """Write the marker once, when the store records a run; never rewritten after."""
    marker = marker_for(database)
    if marker.exists():
        return
    text = json.dumps({"first_run_at": datetime.now(UTC).isoformat(timespec="seconds")})
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def make_private(database: Path) -> None:
    """The database and its WAL files readable by their owner only: evidence names weaknesses."""
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        if path.exists() and path.stat().st_uid == os.geteuid():
            path.chmod(PRIVATE_FILE)
