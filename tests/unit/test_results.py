"""Rolling checks up into control outcomes: the rules an auditor relies on."""

from __future__ import annotations

import pytest

from cityguard.core.records import (
    CheckResult,
    ControlResult,
    Outcome,
    roll_up,
    roll_up_all,
    summarize,
)


def check(
    outcome: Outcome,
    check_id: str = "test_ssh::test_x",
    host: str = "web1",
    controls: tuple[str, ...] = ("CG-SSH-001",),
    observed: str | None = None,
    reason: str | None = None,
) -> CheckResult:
    if outcome is Outcome.NOT_APPLICABLE and reason is None:
        reason = "lab container"
    return CheckResult(check_id, host, controls, outcome, observed=observed, reason=reason)


PASS, FAIL, ERROR, NA = Outcome.PASS, Outcome.FAIL, Outcome.ERROR, Outcome.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("outcomes", "rolled"),
    [
        ([PASS], PASS),
        ([PASS, PASS], PASS),
        ([FAIL], FAIL),
        ([ERROR], ERROR),
        ([PASS, FAIL], FAIL),
        ([ERROR, FAIL], FAIL),  # fail beats error
        ([FAIL, ERROR, PASS, NA], FAIL),
        ([PASS, ERROR], ERROR),  # error beats pass
        ([NA, ERROR], ERROR),
        ([NA], NA),
        ([NA, NA], NA),  # all not-applicable -> not-applicable
        ([NA, PASS], PASS),  # not-applicable + pass -> pass
        ([PASS, NA], PASS),
    ],
)
def test_roll_up_precedence(outcomes: list[Outcome], rolled: Outcome) -> None:
    checks = [check(o, check_id=f"test_m::test_{i}") for i, o in enumerate(outcomes)]
    result = roll_up("CG-SSH-001", "web1", checks)
    assert result.outcome is rolled
    assert result.control_id == "CG-SSH-001"
    assert result.host == "web1"
    assert result.checks == tuple(checks)


def test_no_checks_is_an_error_with_a_reason() -> None:
    result = roll_up("CG-SSH-001", "web1", [])
    assert result.outcome is Outcome.ERROR
    assert result.reason == "no check ran for this control"
    assert result.checks == ()


def test_reason_comes_from_the_checks_with_the_rolled_up_outcome() -> None:
    checks = [
        check(FAIL, "test_m::test_a", reason="observed yes, expected no"),
        check(ERROR, "test_m::test_b", reason="sshd -T failed"),
        check(FAIL, "test_m::test_c", reason="mode: observed 0644, expected 0600 or stricter"),
        check(FAIL, "test_m::test_d", reason="observed yes, expected no"),  # said once
    ]
    result = roll_up("CG-SSH-001", "web1", checks)
    assert result.outcome is Outcome.FAIL
    assert result.reason == (
        "mode: observed 0644, expected 0600 or stricter; observed yes, expected no"
    )


def test_passing_control_has_no_reason_and_keeps_evidence() -> None:
    checks = [
        check(PASS, "test_m::test_a", observed="PermitRootLogin: no"),
        check(PASS, "test_m::test_b"),
        check(NA, "test_m::test_c", reason="kernel.* is global in a container"),
    ]
    result = roll_up("CG-SSH-001", "web1", checks)
    assert result.outcome is Outcome.PASS
    assert result.reason is None
    assert result.observed == "test_m::test_a: PermitRootLogin: no"


def test_all_not_applicable_keeps_the_reasons() -> None:
    checks = [
        check(NA, "test_m::test_a", reason="kernel.* is global"),
        check(NA, "test_m::test_b", reason="no IPv6 in this namespace"),
    ]
    result = roll_up("CG-KRN-001", "web1", checks)
    assert result.outcome is Outcome.NOT_APPLICABLE
    assert result.reason == "kernel.* is global; no IPv6 in this namespace"


@pytest.mark.parametrize("reason", [None, ""])
def test_not_applicable_without_reason_is_refused(reason: str | None) -> None:
    with pytest.raises(
        ValueError, match=r"^test_m::test_a on web1: not-applicable needs a reason$"
    ):
        CheckResult("test_m::test_a", "web1", ("CG-KRN-001",), NA, reason=reason)


def test_roll_up_all_groups_a_check_under_each_control_it_names() -> None:
    shared = check(FAIL, "test_ssh::test_shared", controls=("CG-SSH-002", "CG-SSH-001"))
    only_one = check(PASS, "test_ssh::test_one", controls=("CG-SSH-001",))
    other_host = check(PASS, "test_ssh::test_one", host="db1", controls=("CG-SSH-001",))
    results = roll_up_all([shared, only_one, other_host])
    assert [(r.control_id, r.host, r.outcome) for r in results] == [
        ("CG-SSH-001", "db1", Outcome.PASS),
        ("CG-SSH-001", "web1", Outcome.FAIL),
        ("CG-SSH-002", "web1", Outcome.FAIL),
    ]
    by_key = {(r.control_id, r.host): r for r in results}
    assert by_key[("CG-SSH-001", "web1")].checks == (shared, only_one)
    assert by_key[("CG-SSH-002", "web1")].checks == (shared,)
    assert by_key[("CG-SSH-001", "db1")].checks == (other_host,)


def test_roll_up_all_of_nothing_is_nothing() -> None:
    assert roll_up_all([]) == []


def test_summarize_counts_every_outcome_per_host() -> None:
    results = [
        ControlResult("CG-SSH-001", "web1", Outcome.PASS),
        ControlResult("CG-SSH-002", "web1", Outcome.PASS),
        ControlResult("CG-SSH-003", "web1", Outcome.FAIL),
        ControlResult("CG-KRN-001", "web1", Outcome.NOT_APPLICABLE, reason="container"),
        ControlResult("CG-SSH-001", "db1", Outcome.ERROR, reason="unreachable"),
    ]
    table = summarize(results)
    assert table == {
        "web1": {
            Outcome.PASS: 2,
            Outcome.FAIL: 1,
            Outcome.ERROR: 0,
            Outcome.WAIVED: 0,
            Outcome.NOT_APPLICABLE: 1,
        },
        "db1": {
            Outcome.PASS: 0,
            Outcome.FAIL: 0,
            Outcome.ERROR: 1,
            Outcome.WAIVED: 0,
            Outcome.NOT_APPLICABLE: 0,
        },
    }
    assert list(table) == ["web1", "db1"]  # hosts in the order they were first seen
    assert summarize([]) == {}
