"""Waivers: valid ones waive (checks kept), expired ones fail, groups expand to hosts."""

from __future__ import annotations

from datetime import date

from cityguard.catalog.waivers import apply_waivers, waived_by_host
from cityguard.config import Waiver
from cityguard.config.inventory import Inventory
from cityguard.core.records import CheckResult, ControlResult, Outcome

TODAY = date(2026, 11, 22)
INVENTORY = Inventory(
    hosts={"web1": {}, "db1": {}, "db2": {}},
    groups={"all": ["web1", "db1", "db2"], "web": ["web1"], "db": ["db1", "db2"]},
    group_vars={},
)


def waiver(control: str, hosts: list[str], expires: date) -> Waiver:
    return Waiver(
        control=control,
        hosts=hosts,
        justification="legacy client needs it",
        approver="CISO",
        expires=expires,
    )


def result(control: str, host: str, outcome: Outcome) -> ControlResult:
    check = CheckResult(
        "test_ssh::test_x", host, (control,), outcome, observed="MaxAuthTries: 6", expected="<= 4"
    )
    return ControlResult(control, host, outcome, (check,))


def test_a_valid_waiver_waives_and_keeps_the_observed_value() -> None:
    waivers = (waiver("CG-SSH-003", ["db"], date(2026, 12, 31)),)
    applied = apply_waivers([result("CG-SSH-003", "db2", Outcome.FAIL)], waivers, INVENTORY, TODAY)
    assert applied[0].outcome is Outcome.WAIVED
    assert applied[0].reason == (
        "waived until 2026-12-31 by CISO: legacy client needs it (checks: fail)"
    )
    assert applied[0].observed == "test_ssh::test_x: MaxAuthTries: 6"


def test_an_expired_waiver_counts_as_a_failure_even_if_the_checks_pass() -> None:
    waivers = (waiver("CG-SSH-003", ["db1"], date(2026, 11, 21)),)
    applied = apply_waivers([result("CG-SSH-003", "db1", Outcome.PASS)], waivers, INVENTORY, TODAY)
    assert applied[0].outcome is Outcome.FAIL
    assert applied[0].reason == (
        "waiver expired on 2026-11-21 (approved by CISO); without it the control is pass"
    )


def test_a_waiver_expiring_today_is_still_valid() -> None:
    waivers = (waiver("CG-SSH-003", ["web1"], TODAY),)
    applied = apply_waivers([result("CG-SSH-003", "web1", Outcome.FAIL)], waivers, INVENTORY, TODAY)
    assert applied[0].outcome is Outcome.WAIVED


def test_other_hosts_and_controls_are_untouched() -> None:
    waivers = (waiver("CG-SSH-003", ["db"], date(2027, 1, 1)),)
    results = [
        result("CG-SSH-003", "web1", Outcome.FAIL),
        result("CG-SSH-001", "db1", Outcome.FAIL),
    ]
    assert apply_waivers(results, waivers, INVENTORY, TODAY) == results


def test_the_latest_expiring_of_several_waivers_wins() -> None:
    waivers = (
        waiver("CG-SSH-003", ["db1"], date(2026, 1, 1)),
        waiver("CG-SSH-003", ["db"], date(2027, 1, 1)),
    )
    applied = apply_waivers([result("CG-SSH-003", "db1", Outcome.FAIL)], waivers, INVENTORY, TODAY)
    assert applied[0].outcome is Outcome.WAIVED


def test_harden_skips_only_controls_with_valid_waivers() -> None:
    waivers = (
        waiver("CG-SSH-003", ["db"], date(2027, 1, 1)),
        waiver("CG-SSH-004", ["db1"], date(2026, 1, 1)),
        waiver("CG-NET-001", ["web1", "db1"], date(2027, 1, 1)),
    )
    assert waived_by_host(waivers, INVENTORY, TODAY) == {
        "db1": ["CG-NET-001", "CG-SSH-003"],
        "db2": ["CG-SSH-003"],
        "web1": ["CG-NET-001"],
    }


def test_a_waiver_names_hosts_so_a_system_of_the_same_name_is_not_waived() -> None:
    from dataclasses import replace

    from cityguard.core.records import SubjectKind

    waivers = (waiver("CG-SSH-003", ["db1"], date(2026, 12, 31)),)
    system = replace(result("CG-SSH-003", "db1", Outcome.FAIL), subject_kind=SubjectKind.SYSTEM)
    (applied,) = apply_waivers([system], waivers, INVENTORY, TODAY)
    assert applied.outcome is Outcome.FAIL
