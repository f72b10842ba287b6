"""Benchmark: how long `cityguard --help` takes, against starting Python itself.

An operator's first contact, shell completion and every scheduled run pay this start-up, so
heavy libraries (pydantic, rich, psycopg, ansible-runner) are imported only by the command that
uses them. Baseline measured in the same run: `python -c pass` in the same interpreter.
Prints the median CPU seconds (user + system) of each and their ratio; target: --help under
0.3 s of CPU.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

ROUNDS = 15
TARGET_S = 0.3


def cpu_seconds(argv: list[str]) -> float:
    """CPU time of one child process: less noisy than wall time on a busy machine."""
    before = os.times()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def median_of(argv: list[str]) -> float:
    cpu_seconds(argv)  # warm the page cache once
    return statistics.median(cpu_seconds(argv) for _ in range(ROUNDS))


def main() -> int:
    baseline = median_of([sys.executable, "-c", "pass"])
    cli = median_of([sys.executable, "-m", "cityguard.cli", "--help"])
    print(f"python -c pass:      {baseline:.3f} s CPU (median of {ROUNDS})")
    print(f"cityguard --help:    {cli:.3f} s CPU (median of {ROUNDS})")
    print(f"ratio:               {cli / baseline:.1f}x python start-up")
    print(f"target:              under {TARGET_S} s CPU: {'met' if cli < TARGET_S else 'NOT met'}")
    return 0 if cli < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
