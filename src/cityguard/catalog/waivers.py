"""Waivers: approved, time-limited exceptions to a control on some hosts.

A valid waiver turns the control's result into `waived` (its checks still ran and their values
stay in the evidence) and keeps `harden` from enforcing it on those hosts. An expired waiver
counts as a failure, so a forgotten exception surfaces instead of silently lasting forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date

from cityguard.config import Waiver
from cityguard.config.inventory import Inventory
from cityguard.core.records import ControlResult, Outcome, SubjectKind


def covered_hosts(waiver: Waiver, inventory: Inventory) -> set[str]:
    hosts: set[str] = set()
    for name in waiver.hosts:
        hosts.update(inventory.groups.get(name, [name]))
    return hosts


def waiver_for(
    control_id: str, host: str, waivers: Iterable[Waiver], inventory: Inventory
) -> Waiver | None:
    """The waiver covering this control on this host; the latest-expiring one if several."""
    matching = [
        w for w in waivers if w.control == control_id and host in covered_hosts(w, inventory)
    ]
    return max(matching, key=lambda w: w.expires, default=None)


def apply_waivers(
    results: Iterable[ControlResult], waivers: tuple[Waiver, ...], inventory: Inventory, today: date
) -> list[ControlResult]:
    """Waived or expired-waiver outcomes for host results; waivers name hosts, so results about
    other subjects (a system, a realm) pass through unchanged whatever their name."""
    applied = []
    for result in results:
        if result.subject_kind != SubjectKind.HOST:
            applied.append(result)
            continue
        waiver = waiver_for(result.control_id, result.host, waivers, inventory)
        if waiver is None:
            applied.append(result)
        elif waiver.expires < today:
            reason = (
                f"waiver expired on {waiver.expires} (approved by {waiver.approver}); "
                f"without it the control is {result.outcome.value}"
            )
            applied.append(replace(result, outcome=Outcome.FAIL, reason=reason))
        else:
            reason = (
                f"waived until {waiver.expires} by {waiver.approver}: "
                f"{waiver.justification} (checks: {result.outcome.value})"
            )
            applied.append(replace(result, outcome=Outcome.WAIVED, reason=reason))
    return applied


def waived_by_host(
    waivers: tuple[Waiver, ...], inventory: Inventory, today: date
) -> dict[str, list[str]]:
    """Controls harden must leave alone per host: only waivers still valid today."""
    table: dict[str, list[str]] = {}
    for waiver in waivers:
        if waiver.expires >= today:
            for host in sorted(covered_hosts(waiver, inventory)):
                table.setdefault(host, []).append(waiver.control)
    return {host: sorted(set(ids)) for host, ids in table.items()}
