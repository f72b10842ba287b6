"""What the operator sees while a drill runs.

A restore can take hours; whoever runs the drill wants to know it is moving and how much of the
recovery time objective is already spent, because RTO is the clock the drill is judged by. So
each step says when it starts and each restored part how many bytes are back, both with the
time elapsed since the drill began against the plan's RTO target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cityguard.drill.durations import format_duration


def format_bytes(count: int) -> str:
    """``1536`` → ``1.5 KiB``: binary units, as restic and du show them."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DrillProgress:
    say: Callable[[str], None]
    started_at: datetime
    rto_s: int

    def clock(self, now: datetime | None = None) -> str:
        elapsed = ((now or datetime.now(UTC)) - self.started_at).total_seconds()
        return f"{format_duration(elapsed)} of RTO {format_duration(self.rto_s)}"

    def step(self, name: str) -> None:
        self.say(f"{name} ({self.clock()})")

    def part(self, name: str, index: int, total: int, restored_bytes: int) -> None:
        self.say(
            f"restore {index}/{total}: {name}, {format_bytes(restored_bytes)} of it back so far "
            f"({self.clock()})"
        )

    def streaming(
        self,
        name: str,
        index: int,
        total: int,
        every_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> Callable[[int], None]:
        """What hears a part's bytes as they stream (hours, for a large database): says how
        much of the part is back at most every ``every_s`` seconds, so the screen shows it
        moving."""
        last = [clock()]

        def heard(moved: int) -> None:
            now = clock()
            if now - last[0] >= every_s:
                last[0] = now
                self.part(name, index, total, moved)

        return heard

    def restored(self, restored_bytes: int) -> None:
        self.say(f"restore done: {format_bytes(restored_bytes)} back ({self.clock()})")


def silent(line: str) -> None:
    """The default: JSON output, -q, or a caller with nobody to tell."""
