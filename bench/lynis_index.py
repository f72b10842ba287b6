"""Benchmark: Lynis hardening index and warnings on a fresh lab host, before and after harden.

Lynis (Debian package, baked into the lab image) is an independent auditor: the index must
rise substantially and the warnings that fall inside cityguard's catalog must clear. The
baseline is the same host before `cityguard harden`, measured in the same run.
"""

from __future__ import annotations

from benchlab import bench_lab, timed

HOST = "web1"
AUDIT = (
    "sudo lynis audit system --quick --no-colors --no-log >/dev/null 2>&1; "
    "sudo cat /var/log/lynis-report.dat"
)


def parse_report(text: str) -> tuple[int, list[str], list[str]]:
    """Hardening index, warnings and suggestions (each `TEST-ID|text|...` as Lynis writes it)."""
    index, warnings, suggestions = -1, [], []
    for line in text.splitlines():
        if line.startswith("hardening_index="):
            index = int(line.split("=", 1)[1])
        elif line.startswith("warning[]="):
            warnings.append(line.split("=", 1)[1])
        elif line.startswith("suggestion[]="):
            suggestions.append(line.split("=", 1)[1])
    return index, warnings, suggestions


def main() -> None:
    with bench_lab(HOST) as lab:
        before_s, before = timed(lambda: parse_report(lab.ssh(HOST, AUDIT)))
        harden_s, _ = timed(lambda: lab.cli("harden", "--limit", HOST))
        after_s, after = timed(lambda: parse_report(lab.ssh(HOST, AUDIT)))
    cleared = sorted(set(before[1]) - set(after[1]))
    remaining = sorted(set(after[1]))
    print(
        f"lynis hardening index before: {before[0]} ({len(before[1])} warnings, "
        f"{len(before[2])} suggestions, audit {before_s:.1f} s)"
    )
    print(f"cityguard harden: {harden_s:.1f} s")
    print(
        f"lynis hardening index after:  {after[0]} ({len(after[1])} warnings, "
        f"{len(after[2])} suggestions, audit {after_s:.1f} s); gain {after[0] - before[0]} points"
    )
    for warning in cleared:
        print(f"  cleared warning:   {warning}")
    for warning in remaining:
        print(f"  remaining warning: {warning}")
    for suggestion in sorted(set(before[2]) - set(after[2])):
        print(f"  cleared suggestion:   {suggestion}")
    for suggestion in sorted(set(after[2])):
        print(f"  remaining suggestion: {suggestion}")


if __name__ == "__main__":
    main()
