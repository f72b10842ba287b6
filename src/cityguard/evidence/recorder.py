"""The one way a command writes evidence: open a run, add records, close it with an exit code.

Every command runs inside ``record_run``; whatever happens inside (a result, a cityguard error,
Ctrl-C, a bug), the run is closed with the exit code that describes it, so the store never keeps
a run that looks as if it were still going. Right before it closes, the files of the run's
directory are recorded with their SHA-256 (cityguard.evidence.artifacts), crash or not: the
files of a failed run are the evidence most worth having.

Only cityguard's own error messages are kept (in the summary, in a step's detail): they are
written for the operator and carry no secret, while a foreign exception's text could hold
anything, so of those only the type is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.core.errors import CityguardError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import (
    Change,
    CheckResult,
    ControlResult,
    Measurement,
    Outcome,
    Step,
    Subject,
)
from cityguard.evidence.artifacts import collect_artifacts
from cityguard.evidence.errors import EvidenceError
from cityguard.evidence.model import RunRecord
from cityguard.evidence.store import EvidenceStore

logger = logging.getLogger(__name__)

#: The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = int(ExitCode.INTERRUPTED)


@dataclass
class OpenStep:
    """A step being timed. The block may set outcome (e.g. fail: the restored system did not
    verify) and detail before it ends; an exception escaping the block decides them instead."""

    name: str
    subject: Subject
    started_at: datetime
    outcome: Outcome = Outcome.PASS
    detail: str | None = None

    def fail(self, detail: str | None = None) -> None:
        """The step ran to its end but its result is a failure."""
        self.outcome = Outcome.FAIL
        self.detail = detail if detail is not None else self.detail


@dataclass
class Recorder:
    """An open run: takes records until the command decides its exit code."""

    store: EvidenceStore
    run: RunRecord
    exit_code: ExitCode | None = None
    summary: dict[str, Any] | None = None
    closed_with: int | None = None  # the exit code the run was closed with, once it is

    @property
    def run_id(self) -> str:
        return self.run.id

    def add_check_results(self, results: Iterable[CheckResult]) -> None:
        self.store.add_check_results(self.run.id, results)

    def add_control_results(self, results: Iterable[ControlResult]) -> None:
        self.store.add_control_results(self.run.id, results)

    def add_steps(self, steps: Iterable[Step]) -> None:
        self.store.add_steps(self.run.id, steps)

    def add_measurements(self, measurements: Iterable[Measurement]) -> None:
        self.store.add_measurements(self.run.id, measurements)

    def add_changes(self, changes: Iterable[Change]) -> None:
        self.store.add_changes(self.run.id, changes)

    @contextmanager
    def step(self, name: str, subject: Subject) -> Iterator[OpenStep]:
        """Time the block as one step and record it when the block ends.

        pass unless the block says otherwise; an exception escaping it records error (fail
        for a cityguard error that means a failed result, exit code 1) and is re-raised.
        """
        current = OpenStep(name, subject, datetime.now(UTC))
        try:
            yield current
        except BaseException as error:
            current.outcome = _step_outcome(error)
            current.detail = "; ".join(filter(None, [current.detail, _describe(error)]))
            self._record_step(current)
            raise
        self._record_step(current)

    def _record_step(self, current: OpenStep) -> None:
        finished = max(datetime.now(UTC), current.started_at)  # a clock set back mid-step
        step = Step(
            current.name,
            current.subject,
            current.started_at,
            finished,
            current.outcome,
            current.detail,
        )
        self.store.add_steps(self.run.id, [step])

    def finish(self, exit_code: ExitCode, summary: dict[str, Any] | None = None) -> None:
        """Set the outcome the run closes with when the block ends normally."""
        self.exit_code = exit_code
        self.summary = summary

    def _close(self, exit_code: int, summary: dict[str, Any] | None, failing: bool) -> None:
        """Record the run directory's files, then finish the run.

        When the files cannot be recorded on a run that was ending well, the run closes with
        that error instead (and it is raised): a run claiming success must have its files. On
        a run already failing, the original error matters more; the problem is logged.
        """
        try:
            self._record_artifacts()
        except BaseException as error:
            if failing and isinstance(error, Exception):
                logger.warning("run %s: artifacts not recorded: %s", self.run.id, error)
            else:  # also Ctrl-C while hashing: the run is closed before the error goes on
                if not failing:
                    exit_code, summary = exit_code_of(error), _error_summary(error)
                self._finish_run(exit_code, summary)
                raise
        self._finish_run(exit_code, summary)

    def _finish_run(self, exit_code: int, summary: dict[str, Any] | None) -> None:
        """Close the run; when the store refuses (read-only, disk full), say that it stays open."""
        try:
            self.store.finish_run(self.run.id, exit_code, summary)
            self.closed_with = exit_code
        except EvidenceError as error:
            raise EvidenceError(
                f"{error}; evidence run {self.run.id} could not be closed and stays open "
                f"in the store (it would have closed with exit code {exit_code})"
            ) from error

    def _record_artifacts(self) -> None:
        if self.run.artifacts_dir is None:
            return
        artifacts = collect_artifacts(Path(self.run.artifacts_dir))
        if artifacts:
            self.store.add_artifacts(self.run.id, artifacts)


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
        try:
            recorder._close(exit_code_of(error), _error_summary(error), failing=True)
        except EvidenceError as close_error:
            if isinstance(error, EvidenceError):  # both: the first failure, then the close
                raise EvidenceError(f"{error}; then {close_error}") from error
            raise
        raise
    code = recorder.exit_code if recorder.exit_code is not None else ExitCode.INTERNAL
    recorder._close(int(code), recorder.summary, failing=False)


def _error_summary(error: BaseException) -> dict[str, Any]:
    """Why the run stopped, keeping only what is safe to keep (see the module docstring)."""
    if isinstance(error, KeyboardInterrupt):
        return {"error": "interrupted"}
    if isinstance(error, CityguardError):
        return {"error": type(error).__name__, "message": _message(error)}
    return {"error": type(error).__name__}


def _message(error: CityguardError) -> str:
    return " ".join(str(error).split())[:500]


def _describe(error: BaseException) -> str:
    """A step's detail when an exception ended it; the same rule as the run's summary."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, CityguardError):
        return f"{type(error).__name__}: {_message(error)}"
    return type(error).__name__


def _step_outcome(error: BaseException) -> Outcome:
    if isinstance(error, CityguardError) and error.exit_code == ExitCode.FAILED:
        return Outcome.FAIL
    return Outcome.ERROR
