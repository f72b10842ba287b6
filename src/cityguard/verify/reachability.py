"""A host that cannot be reached, said once: detected in the check run, summarised for the host.

The per-host check run (`cityguard.verify.plugin`) gathers the host's state over SSH once; when
SSH itself fails (exit status 255), every check of the host errors with the same exception. The
plugin raises `HostUnreachable` carrying the last line SSH wrote, and the engine turns the host's
results into one problem line ("unreachable: <why>", one line, secrets redacted) and gives each
check the short reason `UNREACHABLE`. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cityguard.core.records import CheckResult, Outcome
from cityguard.core.secrets import redact

#: The reason every check and control of an unreachable host is recorded with.
UNREACHABLE = "host unreachable"
#: How a check's reason starts (after the exception's name) when SSH could not reach the host.
MARK = f"{UNREACHABLE}: "
#: The longest "why" kept; SSH errors are short, anything longer is cut.
MAX_WHY = 200
#: SSH exits with 255 when it failed itself, else with the remote command's status.
SSH_FAILED = 255
#: What SSH writes to stderr that is not the error: debug output, notices, warning banners.
_NOISE = ("debug", "warning:", "**", "pseudo-terminal")


class HostUnreachable(Exception):
    """SSH could not reach the host; the message is `MARK` followed by SSH's last error."""

    def __init__(self, why: str) -> None:
        super().__init__(f"{MARK}{why}")
        self.why = why


def one_line(text: str, limit: int = MAX_WHY) -> str:
    """Whitespace (newlines included) collapsed to single spaces, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def last_ssh_error(stderr: str) -> str:
    """The last line SSH wrote that says what went wrong, as one trimmed line."""
    lines = [line.strip() for line in stderr.splitlines()]
    errors = [line for line in lines if line and not line.lower().startswith(_NOISE)]
    if not errors:
        return "ssh failed and said nothing"
    return one_line(errors[-1])


def ssh_failure(error: BaseException) -> HostUnreachable | None:
    """A HostUnreachable when `error` is testinfra's "ssh exited with 255" (its first argument
    the command's result), else None: a failure of the command itself is not unreachability."""
    result = error.args[0] if error.args else None
    if getattr(result, "exit_status", None) != SSH_FAILED:
        return None
    stderr = getattr(result, "stderr", "")
    return HostUnreachable(last_ssh_error(stderr if isinstance(stderr, str) else ""))


def unreachable_why(results: Sequence[CheckResult]) -> str | None:
    """Why the host was unreachable, from its check results, or None if it was reached: the
    text after `MARK` in the last errored check that carries it, redacted, one line."""
    why = None
    for result in results:
        if result.outcome is Outcome.ERROR and result.reason and MARK in result.reason:
            why = result.reason.split(MARK, 1)[1]
    return None if why is None else one_line(redact(why))


def as_unreachable(results: Sequence[CheckResult]) -> list[CheckResult]:
    """The host's check results, each an error with the short reason `UNREACHABLE`."""
    return [
        replace(r, outcome=Outcome.ERROR, reason=UNREACHABLE, observed=None, expected=None)
        for r in results
    ]
