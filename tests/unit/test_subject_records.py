"""Subjects, steps, measurements and changes: the records areas other than hosts produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cityguard.core.records import (
    CheckResult,
    Comparison,
    ControlResult,
    Measurement,
    Outcome,
    Step,
    Subject,
    SubjectKind,
    roll_up,
    roll_up_all,
)

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
SYSTEM = Subject(SubjectKind.SYSTEM, "Meldewesen")


def test_results_are_about_hosts_unless_said_otherwise() -> None:
    check = CheckResult("ssh_root_login", "web1", ("CG-SSH-001",), Outcome.PASS)
    assert check.subject_kind is SubjectKind.HOST and check.subject == Subject.host("web1")
    control = ControlResult("CG-SSH-001", "web1", Outcome.PASS)
    assert control.subject == Subject(SubjectKind.HOST, "web1")
    assert roll_up("CG-SSH-001", "web1", [check]).subject_kind is SubjectKind.HOST


def test_roll_up_keeps_subjects_of_the_same_name_apart() -> None:
    as_host = CheckResult("a", "web1", ("CG-DR-001",), Outcome.FAIL)
    as_system = CheckResult(
        "b", "web1", ("CG-DR-001",), Outcome.PASS, subject_kind=SubjectKind.SYSTEM
    )
    rolled = roll_up_all([as_system, as_host])
    assert [(c.subject, c.outcome) for c in rolled] == [
        (Subject.host("web1"), Outcome.FAIL),
        (Subject(SubjectKind.SYSTEM, "web1"), Outcome.PASS),
    ]
    none_ran = roll_up("CG-DR-001", "Meldewesen", [], subject_kind=SubjectKind.SYSTEM)
    assert none_ran.subject == SYSTEM and none_ran.outcome is Outcome.ERROR


def test_subject_kinds_are_the_stored_names() -> None:
    assert [k.value for k in SubjectKind] == [
        "host", "system", "realm", "identity-provider", "segment", "prefix", "site",
    ]  # fmt: skip
    assert Subject("realm", "buerger").kind is SubjectKind.REALM  # type: ignore[arg-type]
    assert str(Subject(SubjectKind.PREFIX, "2001:db8::/32")) == "prefix:2001:db8::/32"
    with pytest.raises(ValueError):
        Subject("planet", "earth")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a name"):
        Subject(SubjectKind.HOST, "")


def test_step_times_are_utc_and_ordered() -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))
    step = Step("restore", SYSTEM, local, T0 + timedelta(seconds=90), Outcome.PASS)
    assert step.started_at.utcoffset() == timedelta(0) and step.duration_s == 90.0
    with pytest.raises(ValueError, match="timezone-aware"):
        Step("restore", SYSTEM, datetime(2025, 1, 1), T0, Outcome.PASS)
    with pytest.raises(ValueError, match="finished before it started"):
        Step("restore", SYSTEM, T0, T0 - timedelta(microseconds=1), Outcome.PASS)


@pytest.mark.parametrize(
    ("value", "target", "comparison", "met"),
    [
        (212, 3600, Comparison.AT_MOST, True),
        (3600, 3600, Comparison.AT_MOST, True),
        (3601, 3600, Comparison.AT_MOST, False),
        (97.5, 99, Comparison.AT_LEAST, False),
        (99, 99, Comparison.AT_LEAST, True),
        (3, 3, Comparison.EQUAL, True),
        (2, 3, Comparison.EQUAL, False),
        (5, None, Comparison.AT_MOST, None),
        (5, None, None, None),
    ],
)
def test_a_measurement_meets_its_target(
    value: float, target: float | None, comparison: Comparison | None, met: bool | None
) -> None:
    measured = Measurement("rto_s", value, "s", SYSTEM, target, comparison)
    assert measured.met is met
    assert isinstance(measured.value, float)


def test_a_measurement_refuses_what_cannot_be_compared_or_stored() -> None:
    with pytest.raises(ValueError, match="a target needs a comparison"):
        Measurement("rto_s", 1, "s", SYSTEM, target=3600)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            Measurement("rto_s", bad, "s", SYSTEM)
    with pytest.raises(TypeError):
        Measurement("rto_s", "212", "s", SYSTEM)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Measurement("restored", True, "flag", SYSTEM)
