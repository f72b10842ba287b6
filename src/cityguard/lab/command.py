"""Running the lab's system commands: argv lists only, and one typed error that says what failed.

The commands run through the engine's one runner (``cityguard.core.process``); a failure is
re-raised as LabError, the error every lab step raises, with the same one-line message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cityguard.core import process
from cityguard.core.errors import CityguardError


class LabError(CityguardError):
    """A lab step failed; the message is one line saying which step and why."""


def run(
    argv: Sequence[str],
    *,
    what: str,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Run a command and return its stdout; raise LabError naming the step on failure."""
    try:
        completed = process.run(argv, what=what, timeout=timeout, input_text=input_text, env=env)
    except process.ProcessError as exc:
        raise LabError(str(exc)) from exc
    return completed.stdout
