"""The evidence store's errors, typed so callers can tell "no such run" from "store broken"."""

from __future__ import annotations

from cityguard.core.errors import CityguardError
from cityguard.core.exitcodes import ExitCode


class EvidenceError(CityguardError):
    """The evidence store cannot do what was asked; the message says why."""


class UnknownRun(EvidenceError, KeyError):
    """No run with this id is recorded (a KeyError, so lookups can be handled as such)."""

    exit_code = ExitCode.USAGE

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id

    def __str__(self) -> str:
        return f"no evidence run with id {self.run_id!r}"

    def lines(self) -> list[str]:
        return [str(self)]
