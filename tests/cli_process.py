"""The real command line in a child process, for tests that need what only a process shows:
the exit code, stderr line by line, no traceback, nothing imported from the test's own state.

Importable from every test module: pytest puts this directory (the rootdir conftest's) on
sys.path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cityguard(
    *args: str, state: Path, home: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m cityguard.cli`` with a clean environment: only PATH, CITYGUARD_STATE and
    HOME, so the developer's variables, state and caches never decide a test's outcome.

    HOME is the state directory unless ``home`` says otherwise: then a test that asserts the
    state directory was not created also catches writes to HOME. A command that hangs fails
    the test after two minutes instead of stopping the whole run.
    """
    return subprocess.run(
        [sys.executable, "-m", "cityguard.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CITYGUARD_STATE": str(state), "HOME": str(home or state)},
        check=False,
        timeout=120,
        cwd=cwd,
    )
