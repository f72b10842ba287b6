"""Benchmark: first and second `cityguard harden` on fresh lab hosts.

The second run must repair drift but change nothing on a compliant host, and take at most 40%
of the first (the baseline, measured in the same run). Speed comes from lean roles, never from
skipping work: a second run still checks every setting.
"""

from __future__ import annotations

from benchlab import bench_lab, timed

HOSTS = "web1,db1"


def main() -> None:
    with bench_lab(HOSTS) as lab:
        first_s, (first_code, _) = timed(lambda: lab.cli("harden", "--limit", HOSTS))
        second_s, (second_code, second_out) = timed(lambda: lab.cli("harden", "--limit", HOSTS))
    changed = [line for line in second_out.splitlines() if line.startswith("changed:")]
    print(f"harden 1st run (2 hosts): {first_s:.2f} s (exit {first_code})")
    print(f"harden 2nd run (2 hosts): {second_s:.2f} s (exit {second_code}; {changed})")
    print(f"ratio 2nd/1st: {second_s / first_s:.2f} (target <= 0.40)")


if __name__ == "__main__":
    main()
