"""The lock files of a restic repository on disk, as the fault tests look for them."""

from __future__ import annotations

import re
from pathlib import Path

LOCK_NAME = re.compile("[0-9a-f]{64}")


def lock_files(locks: Path) -> list[str]:
    """The finished lock files under ``locks``. restic writes each one under a temporary name
    and renames it into place, so a kill can leave a half-written temporary file that is no
    lock (and that restic ignores)."""
    return [path.name for path in locks.iterdir() if LOCK_NAME.fullmatch(path.name)]
