"""The one base error: each error knows the exit code it means, so the CLI needs no table."""

from __future__ import annotations

from cityguard.core.exitcodes import ExitCode


class CityguardError(Exception):
    """An expected failure that the CLI reports in one line per problem, without a traceback.

    Subclasses set exit_code; the default is PARTIAL (a step could not run), the honest code for
    "something outside cityguard stopped this", which is what most tool and host errors are.
    """

    exit_code: ExitCode = ExitCode.PARTIAL

    def lines(self) -> list[str]:
        """What the operator reads: one line per problem."""
        return [f"error: {self}"]


class UsageError(CityguardError):
    """The operator asked for something that cannot be done as asked; nothing was changed."""

    exit_code = ExitCode.USAGE

    def lines(self) -> list[str]:
        return [str(self)]
