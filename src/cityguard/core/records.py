"""The result model shared by every area: what a check saw, and what it means for a control.

A control's outcome on a host is the roll-up of its checks (DESIGN.md): any failure fails the
control, any check that could not run makes it an error, otherwise it passes. Every check's
observed value stays attached so a report can show evidence rather than a claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    WAIVED = "waived"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class CheckResult:
    """One check (one test in checks/) on one host."""

    check_id: str
    host: str
    controls: tuple[str, ...]
    outcome: Outcome
    observed: str | None = None
    expected: str | None = None
    reason: str | None = None
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.outcome is Outcome.NOT_APPLICABLE and not self.reason:
            raise ValueError(f"{self.check_id} on {self.host}: not-applicable needs a reason")


@dataclass(frozen=True)
class ControlResult:
    """One control on one host: the roll-up of its checks, which are kept as detail."""

    control_id: str
    host: str
    outcome: Outcome
    checks: tuple[CheckResult, ...] = field(default=())
    reason: str | None = None

    @property
    def observed(self) -> str:
        """Every check's observed value, so the control's evidence is readable on its own."""
        return "; ".join(f"{c.check_id}: {c.observed}" for c in self.checks if c.observed)


def roll_up(control_id: str, host: str, checks: Sequence[CheckResult]) -> ControlResult:
    """Combine the checks of one control on one host.

    fail if any check failed, error if any could not run (or there were none), not-applicable
    only when every check was not-applicable, else pass.
    """
    if not checks:
        return ControlResult(control_id, host, Outcome.ERROR, (), "no check ran for this control")
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
    return ControlResult(control_id, host, outcome, tuple(checks), "; ".join(reasons) or None)


def roll_up_all(checks: Iterable[CheckResult]) -> list[ControlResult]:
    """Group check results by (control, host) and roll each group up, in a stable order."""
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for check in checks:
        for control_id in check.controls:
            groups.setdefault((control_id, check.host), []).append(check)
    return [roll_up(c, h, groups[(c, h)]) for c, h in sorted(groups)]


def summarize(results: Iterable[ControlResult]) -> dict[str, dict[Outcome, int]]:
    """Count control outcomes per host, for the summary table."""
    table: dict[str, dict[Outcome, int]] = {}
    for result in results:
        counts = table.setdefault(result.host, dict.fromkeys(Outcome, 0))
        counts[result.outcome] += 1
    return table
