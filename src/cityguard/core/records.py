"""The result model shared by every area: what a check saw, and what it means for a control.

A control's outcome on a host is the roll-up of its checks (docs/architecture.md): any failure
fails the control, any check that could not run makes it an error, otherwise it passes. Every
check's observed value stays attached so a report can show evidence rather than a claim.

Not every area judges hosts: a drill judges an information system, the eIDAS broker a realm or
identity provider, the IPv6 rollout a segment or prefix. Every result is therefore about a typed
Subject. Check and control results keep their ``host`` field as the subject's name (every caller
and stored row already uses it) and carry the kind beside it, ``host`` unless said otherwise.

Besides results, areas produce timed steps (drill phases, rollout batches), measurements (a
recovery time against its target) and changes (what a command altered), so that a report can be
built from the evidence store alone, without parsing free text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    WAIVED = "waived"
    NOT_APPLICABLE = "not-applicable"


class SubjectKind(StrEnum):
    """What a result is about; the values are stored, so never rename one."""

    HOST = "host"
    SYSTEM = "system"  # an information system of a disaster-recovery drill plan
    REALM = "realm"  # an eIDAS broker (Keycloak) realm
    IDENTITY_PROVIDER = "identity-provider"
    SEGMENT = "segment"  # an IPv6 network segment
    PREFIX = "prefix"  # an IPv6 prefix
    SITE = "site"  # the whole site, for what belongs to no single part of it


@dataclass(frozen=True)
class Subject:
    """The thing a result, step, measurement or change is about: a kind and a name."""

    kind: SubjectKind
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SubjectKind(self.kind))  # "realm" works, "nope" fails
        if not self.name:
            raise ValueError(f"a {self.kind} subject needs a name")

    @classmethod
    def host(cls, name: str) -> Subject:
        return cls(SubjectKind.HOST, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def as_utc(value: datetime) -> datetime:
    """Refuse naive datetimes: an evidence time that could be local or UTC proves nothing."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"evidence times must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class CheckResult:
    """One check (one test in checks/) on one subject: ``host`` names it, of ``subject_kind``."""

    check_id: str
    host: str
    controls: tuple[str, ...]
    outcome: Outcome
    observed: str | None = None
    expected: str | None = None
    reason: str | None = None
    duration_s: float = 0.0
    subject_kind: SubjectKind = SubjectKind.HOST

    def __post_init__(self) -> None:
        if self.outcome is Outcome.NOT_APPLICABLE and not self.reason:
            raise ValueError(f"{self.check_id} on {self.host}: not-applicable needs a reason")
        object.__setattr__(self, "subject_kind", SubjectKind(self.subject_kind))

    @property
    def subject(self) -> Subject:
        return Subject(self.subject_kind, self.host)


@dataclass(frozen=True)
class ControlResult:
    """One control on one subject (``host`` names it): the roll-up of its checks, kept as detail."""

    control_id: str
    host: str
    outcome: Outcome
    checks: tuple[CheckResult, ...] = field(default=())
    reason: str | None = None
    subject_kind: SubjectKind = SubjectKind.HOST

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject_kind", SubjectKind(self.subject_kind))

    @property
    def subject(self) -> Subject:
        return Subject(self.subject_kind, self.host)

    @property
    def observed(self) -> str:
        """Every check's observed value, so the control's evidence is readable on its own."""
        return "; ".join(f"{c.check_id}: {c.observed}" for c in self.checks if c.observed)


def roll_up(
    control_id: str,
    host: str,
    checks: Sequence[CheckResult],
    *,
    subject_kind: SubjectKind = SubjectKind.HOST,
) -> ControlResult:
    """Combine the checks of one control on one subject (a host unless subject_kind says else).

    fail if any check failed, error if any could not run (or there were none), not-applicable
    only when every check was not-applicable, else pass.
    """
    if not checks:
        reason = "no check ran for this control"
        return ControlResult(control_id, host, Outcome.ERROR, (), reason, subject_kind)
    outcomes = {c.outcome for c in checks}
    if Outcome.FAIL in outcomes:
        outcome = Outcome.FAIL
    elif Outcome.ERROR in outcomes:
        outcome = Outcome.ERROR
    elif outcomes == {Outcome.NOT_APPLICABLE}:
        outcome = Outcome.NOT_APPLICABLE
    else:
        outcome = Outcome.PASS
    reasons = sorted({c.reason for c in checks if c.reason and c.outcome is outcome})
    why = "; ".join(reasons) or None
    return ControlResult(control_id, host, outcome, tuple(checks), why, subject_kind)


def roll_up_all(checks: Iterable[CheckResult]) -> list[ControlResult]:
    """Group check results by (control, subject) and roll each group up, in a stable order."""
    groups: dict[tuple[str, str, SubjectKind], list[CheckResult]] = {}
    for check in checks:
        for control_id in check.controls:
            groups.setdefault((control_id, check.host, check.subject_kind), []).append(check)
    return [roll_up(c, h, groups[(c, h, k)], subject_kind=k) for c, h, k in sorted(groups)]


def summarize(results: Iterable[ControlResult]) -> dict[str, dict[Outcome, int]]:
    """Count control outcomes per host, for the summary table."""
    table: dict[str, dict[Outcome, int]] = {}
    for result in results:
        counts = table.setdefault(result.host, dict.fromkeys(Outcome, 0))
        counts[result.outcome] += 1
    return table


@dataclass(frozen=True)
class Step:
    """One timed step of a procedure: a drill phase (preflight, restore, verify), a rollout
    batch. Kept with its times so an auditor sees what ran when, and for how long."""

    name: str
    subject: Subject
    started_at: datetime
    finished_at: datetime
    outcome: Outcome
    detail: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_at", as_utc(self.started_at))
        object.__setattr__(self, "finished_at", as_utc(self.finished_at))
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        if not self.name:
            raise ValueError("a step needs a name")
        if self.finished_at < self.started_at:
            raise ValueError(f"step {self.name} on {self.subject} finished before it started")

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class Comparison(StrEnum):
    """How a measurement meets its target, which also says which direction is better."""

    AT_MOST = "at-most"  # lower is better: a recovery time, a loss of data
    AT_LEAST = "at-least"  # higher is better: bytes restored, a share of hosts reachable
    EQUAL = "equal"  # exactly the target: a count that must match


@dataclass(frozen=True)
class Measurement:
    """A named number with its unit, e.g. rto_s 212 s with target at most 3600.

    Kept as a number, not text, so trends across runs need no parsing. A target needs a
    comparison (is 212 against 3600 good?); a comparison alone still says which way is better.
    """

    name: str
    value: float
    unit: str
    subject: Subject
    target: float | None = None
    comparison: Comparison | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a measurement needs a name")
        object.__setattr__(self, "value", _finite(self.name, "value", self.value))
        if self.target is not None:
            object.__setattr__(self, "target", _finite(self.name, "target", self.target))
            if self.comparison is None:
                raise ValueError(f"measurement {self.name}: a target needs a comparison")
        if self.comparison is not None:
            object.__setattr__(self, "comparison", Comparison(self.comparison))

    @property
    def met(self) -> bool | None:
        """Whether the value meets the target; None when there is no target to meet."""
        if self.target is None or self.comparison is None:
            return None
        if self.comparison is Comparison.AT_MOST:
            return self.value <= self.target
        if self.comparison is Comparison.AT_LEAST:
            return self.value >= self.target
        return self.value == self.target


def _finite(name: str, what: str, number: float) -> float:
    """A plain float; NaN and infinity are refused because no backend stores them alike."""
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise TypeError(f"measurement {name}: {what} must be a number, got {number!r}")
    if not math.isfinite(number):
        raise ValueError(f"measurement {name}: {what} must be finite, got {number}")
    return float(number)


@dataclass(frozen=True)
class Change:
    """What a command changed on a subject for one control (None: the change served no
    selected control, kept anyway so no change goes unrecorded). description is short (a task
    name); diff is the change itself when the tool reported one."""

    subject: Subject
    control_id: str | None
    description: str
    diff: str | None = None
