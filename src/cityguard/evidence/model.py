"""What one cityguard run leaves behind for an auditor: who ran what, when, where, with what.

A run record has to answer an auditor's questions long after the fact, so it captures facts
that are easy to lose: the OS user, the exact content commit (flagged when the checkout had
uncommitted changes, because then the commit alone does not describe what ran), the versions
of the tools that did the work, and the baseline and resolved parameters the run was judged
against (the same control passes or fails depending on them).

The reading side's shapes live here too: a result, measurement or run as found by the trend
queries, with the run it belongs to.
"""

from __future__ import annotations

import getpass
import logging
import os
import platform
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cityguard.core import process
from cityguard.core.records import ControlResult, Measurement, Subject, as_utc
from cityguard.core.secrets import redact

logger = logging.getLogger(__name__)

#: Distributions whose versions change what a run does, so every record names them.
TRACKED_DISTRIBUTIONS = ("cityguard", "ansible-core", "pytest-testinfra")


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with fixed microsecond precision, so text order is time order."""
    return as_utc(value).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


@dataclass
class RunRecord:
    """One cityguard invocation; finished_at and exit_code stay None while it is running.

    baseline and parameters are None for runs recorded before the store kept them (schema 1):
    unknown, which is not the same as "no parameters".
    """

    id: str
    site: str
    command: str
    operator: str
    started_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None
    content_commit: str | None = None
    tool_versions: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    artifacts_dir: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    parameters: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.started_at = as_utc(self.started_at)
        if self.finished_at is not None:
            self.finished_at = as_utc(self.finished_at)


def new_run(
    site: str,
    command: str,
    hosts: Iterable[str],
    *,
    content_dir: Path | None = None,
    artifacts_dir: str | Path | None = None,
    summary: dict[str, Any] | None = None,
    baseline: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> RunRecord:
    """A record for a run starting now, with operator, versions and content commit filled in.

    parameters are the resolved ones (control id -> parameter -> value) the run used.
    """
    return RunRecord(
        id=uuid.uuid4().hex,
        site=site,
        command=command,
        operator=current_operator(),
        started_at=datetime.now(UTC),
        content_commit=content_commit(content_dir) if content_dir is not None else None,
        tool_versions=tool_versions(),
        hosts=list(hosts),
        artifacts_dir=str(artifacts_dir) if artifacts_dir is not None else None,
        summary=dict(summary or {}),
        baseline=baseline,
        parameters=dict(parameters) if parameters is not None else None,
    )


@dataclass(frozen=True)
class RecordedResult:
    """A control result as a trend query finds it: with the run that recorded it."""

    run_id: str
    run_started_at: datetime
    command: str
    result: ControlResult


@dataclass(frozen=True)
class RecordedMeasurement:
    """One point of a measurement series: the measurement and the run that took it."""

    run_id: str
    run_started_at: datetime
    command: str
    measurement: Measurement


@dataclass(frozen=True)
class LastRun:
    """The most recent run of a command that concerned a subject (see EvidenceStore.last_runs)."""

    subject: Subject
    run: RunRecord

    @property
    def command(self) -> str:
        return self.run.command


def current_operator() -> str:
    """The OS user; a numeric uid when the account has no name (e.g. in a bare container)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def tool_versions() -> dict[str, str]:
    """Versions of the tracked distributions that are installed, plus the Python running us."""
    versions: dict[str, str] = {}
    for name in TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["python"] = platform.python_version()
    return versions


def content_commit(directory: Path) -> str | None:
    """HEAD of the git checkout at directory, suffixed "-dirty" if it has local changes.

    None when the directory is not a git checkout or git is missing: the record then says
    plainly that the content version is unknown instead of guessing.
    """
    head = _git(directory, "rev-parse", "HEAD")
    if head is None or not head.strip():
        return None
    status = _git(directory, "status", "--porcelain")
    dirty = status is None or bool(status.strip())  # unknown status: do not claim a clean tree
    return head.strip() + ("-dirty" if dirty else "")


def _git(directory: Path, *args: str) -> str | None:
    argv = ["git", "-C", str(directory), *args]
    try:
        proc = process.run(argv, what=f"git {args[0]} in {directory}", timeout=60, check=False)
    except process.ProcessError as exc:
        logger.warning("cannot run git in %s: %s", directory, exc.reason)
        return None
    if not proc.ok:
        if "not a git repository" not in proc.stderr:
            # e.g. git's "dubious ownership" refusal: worth telling, since evidence loses the commit
            detail = redact(proc.stderr.strip())
            logger.warning("git %s failed in %s: %s", args[0], directory, detail)
        return None
    return proc.stdout
