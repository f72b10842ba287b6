"""Running the lab's system commands: argv lists only, and one typed error that says what failed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from cityguard.core.errors import CityguardError


class LabError(CityguardError):
    """A lab step failed; the message is one line saying which step and why."""


def run(
    argv: Sequence[str],
    *,
    what: str,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a command and return its stdout; raise LabError naming the step on failure."""
    try:
        completed = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{what}: command not found: {argv[0]}") from exc
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit code {completed.returncode}"
        raise LabError(f"{what}: {last}")
    return completed.stdout
