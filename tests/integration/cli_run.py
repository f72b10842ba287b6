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
