"""One run per site at a time: an advisory lock file that says who holds it.

Two ``harden`` runs on one site would race on the same files of the same hosts, and a ``check``
during a ``harden`` reports a state that is half old, half new. The lock is ``flock`` on a file
in the site's state directory: the kernel releases it when its holder exits, however it exits
(SIGKILL included), so a crashed run never leaves the site locked. The holder writes who it is
(pid, user, command, since) into the file, and whoever finds the site busy is told exactly that.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cityguard.core.errors import CityguardError
from cityguard.core.exitcodes import ExitCode

LOCK_FILE = "site.lock"


class SiteBusy(CityguardError):
    """Another run holds the site's lock; nothing was done."""

    exit_code = ExitCode.PARTIAL

    def lines(self) -> list[str]:
        return [f"error: {self}"]


def holder_text(raw: str) -> str:
    """``harden (pid 4242, user ops, since 2026-05-04T10:00:00+00:00)`` from the lock file."""
    try:
        info = json.loads(raw)
        return (
            f"'{info['command']}' (pid {info['pid']}, user {info['user']}, since {info['since']})"
        )
    except (ValueError, KeyError, TypeError):
        return "another run (it has not said who it is yet)"


@contextmanager
def site_lock(state_dir: Path, site: str, command: str) -> Iterator[None]:
    """Hold the site's lock for the block, or raise SiteBusy naming the holder at once."""
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_text(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            raise SiteBusy(
                f"site {site} is busy: {holder} holds {path}; wait for it to end, "
                f"then run '{command}' again"
            ) from None
        info = {
            "pid": os.getpid(),
            "user": _user(),
            "command": command,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released: the next reader must not name a gone holder
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())
