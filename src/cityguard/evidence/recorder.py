"""The one way a command writes evidence: open a run, add records, close it with an exit code.

Every command runs inside ``record_run``; whatever happens inside (a result, a cityguard error,
Ctrl-C, a bug), the run is closed with the exit code that describes it, so the store never keeps
a run that looks as if it were still going.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cityguard.core.errors import CityguardError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import CheckResult, ControlResult
from cityguard.evidence.model import RunRecord
from cityguard.evidence.store import EvidenceStore

#: The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


@dataclass
class Recorder:
    """An open run: takes records until the command decides its exit code."""

    store: EvidenceStore
    run: RunRecord
    exit_code: ExitCode | None = None
    summary: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self.run.id

    def add_check_results(self, results: Iterable[CheckResult]) -> None:
        self.store.add_check_results(self.run.id, results)

    def add_control_results(self, results: Iterable[ControlResult]) -> None:
        self.store.add_control_results(self.run.id, results)

    def finish(self, exit_code: ExitCode, summary: dict[str, Any] | None = None) -> None:
        """Set the outcome the run closes with when the block ends normally."""
        self.exit_code = exit_code
        self.summary = summary


def exit_code_of(error: BaseException) -> int:
    """The code a run ends with when an exception leaves its block."""
    if isinstance(error, CityguardError):
        return int(error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    return int(ExitCode.INTERNAL)


@contextmanager
def record_run(store: EvidenceStore, run: RunRecord) -> Iterator[Recorder]:
    """Start ``run`` in ``store`` and close it however the block ends.

    A block that ends without calling ``finish`` closes the run as an internal error: a command
    that forgot to decide its outcome must not look successful.
    """
    store.start_run(run)
    recorder = Recorder(store, run)
    try:
        yield recorder
    except BaseException as error:
        store.finish_run(run.id, exit_code_of(error), _error_summary(error))
        raise
    code = recorder.exit_code if recorder.exit_code is not None else ExitCode.INTERNAL
    store.finish_run(run.id, int(code), recorder.summary)


def _error_summary(error: BaseException) -> dict[str, Any]:
    """Why the run stopped. Only cityguard's own messages are kept: they are written for the
    operator and carry no secret, while a foreign exception's text could hold anything."""
    if isinstance(error, KeyboardInterrupt):
        return {"error": "interrupted"}
    if isinstance(error, CityguardError):
        return {"error": type(error).__name__, "message": " ".join(str(error).split())[:500]}
    return {"error": type(error).__name__}
