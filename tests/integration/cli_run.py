"""The command line run in the test's own process, as the lab tests drive it: a command's exit
code and what it printed, and what the evidence store says the last harden changed.

In process rather than a child process, so a test sees the CITYGUARD_STATE its fixture set
(the session lab's state) and a failure's traceback points into cityguard.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from cityguard import cli
from cityguard.evidence import SqliteStore


def run_cli(*args: str) -> tuple[int, str, str]:
    """``cityguard *args``: the exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def changed_per_host(state_dir: Path) -> dict[str, int]:
    """How many changes the latest harden run made on each host, from its evidence."""
    with SqliteStore(state_dir / "evidence.sqlite") as store:
        run = store.latest_run("harden")
    assert run is not None
    return {host: stats["changed"] for host, stats in run.summary["hosts"].items()}


def changed_controls_per_host(state_dir: Path) -> dict[str, set[str | None]]:
    """The controls each host's changes served in the latest harden run (None: a change that
    served no selected control); a host that changed nothing is absent."""
    with SqliteStore(state_dir / "evidence.sqlite") as store:
        run = store.latest_run("harden")
        assert run is not None
        changes = store.changes(run.id)
    found: dict[str, set[str | None]] = {}
    for change in changes:
        found.setdefault(change.subject.name, set()).add(change.control_id)
    return found
