"""Rules as expected values: `at_least(900)`, `within(1, 15)`, `mode_and_owner(0o600, ...)`.
A check records such a rule as its expected value, so the evidence reads naturally ("900 or
more"). Kept apart from the facts because it is about judging values, not gathering them.

It registers no section.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from cityguard.verify.facts import FileStat


class Rule:
    """An expected value that is a rule rather than one value.

    `expect.equal(observed, at_least(900), "unlock_time")` passes when the rule holds and records
    the rule's text ("900 or more") as the expected value, so the evidence reads naturally.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, text: str, holds: Callable[[Any], bool]) -> None:
        self.text = text
        self.holds = holds

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        try:
            return bool(self.holds(other))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def as_int(value: Any) -> int | None:
    """The integer a value starts with (`"14 (/etc/...)"` -> 14), or None."""
    match = re.match(r"\s*(-?\d+)", str(value)) if value is not None else None
    return int(match.group(1)) if match else None


def at_least(limit: int) -> Rule:
    return Rule(f"{limit} or more", lambda v: (n := as_int(v)) is not None and n >= limit)


def within(low: int, high: int) -> Rule:
    return Rule(f"{low} to {high}", lambda v: (n := as_int(v)) is not None and low <= n <= high)


def zero_or_at_least(limit: int) -> Rule:
    """For lock durations: 0 (until an administrator unlocks) or at least `limit`."""
    return Rule(
        f"0 (manual unlock) or {limit} or more",
        lambda v: (n := as_int(v)) is not None and (n == 0 or n >= limit),
    )


def only_from(allowed: Iterable[str]) -> Rule:
    """A comma-separated list whose every item is allowed (and which is not empty)."""
    allowed_set = list(allowed)

    def holds(value: Any) -> bool:
        items = [item for item in str(value).split(",") if item]
        return bool(items) and all(item in allowed_set for item in items)

    return Rule("only " + ",".join(allowed_set), holds)


def umask_at_least_as_strict(wanted: str) -> Rule:
    """A umask that masks at least the bits `wanted` masks (027 masks group w, other rwx)."""
    bits = int(wanted, 8)
    return Rule(
        f"{wanted} or stricter",
        lambda v: bool(re.fullmatch(r"0?[0-7]{3}", str(v))) and int(str(v), 8) & bits == bits,
    )


def mode_and_owner(max_mode: int, owners: Iterable[str]) -> Rule:
    """`owner:group mode` text: an allowed owner, and no permission bit beyond `max_mode`."""
    owner_list = list(owners)

    def holds(value: Any) -> bool:
        owner, _, mode = str(value).partition(" ")
        return owner in owner_list and int(mode, 8) & ~max_mode == 0

    return Rule(f"{' or '.join(owner_list)}, {max_mode:04o} or stricter", holds)


def absent_or(rule: Rule) -> Rule:
    """`rule`, or the thing is absent (recorded as the text "absent")."""
    return Rule(f"absent, or {rule.text}", lambda v: v == "absent" or rule == v)


def stat_text(stat: FileStat | None) -> str:
    """How a file's ownership and mode are recorded: `root:root 0600`, or `absent`."""
    return f"{stat.owner}:{stat.group} {stat.mode_text}" if stat else "absent"
