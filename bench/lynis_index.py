"""Benchmark: Lynis hardening index, warnings and suggestions on fresh lab hosts, before and
after harden, for the default baseline and the strict one.

Lynis (Debian package, baked into the lab image) is an independent auditor: the index must
rise substantially and the warnings that fall inside cityguard's catalog must clear. The
baseline is the same host before `cityguard harden`, measured in the same run.
"""

from __future__ import annotations

from benchlab import bench_lab, timed

Report = tuple[int, list[str], list[str]]
Audit = tuple[float, Report]
Timed = tuple[float, tuple[int, str]]

AUDIT = (
    "sudo lynis audit system --quick --no-colors --no-log >/dev/null 2>&1; "
    "sudo cat /var/log/lynis-report.dat"
)


def parse_report(text: str) -> Report:
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


def report(baseline: str, harden: Timed, audits: tuple[Audit, Audit]) -> None:
    (harden_s, (harden_code, _)), ((before_s, before), (after_s, after)) = harden, audits
    print(f"== baseline {baseline}")
    print(
        f"lynis hardening index before: {before[0]} ({len(before[1])} warnings, "
        f"{len(before[2])} suggestions, audit {before_s:.1f} s)"
    )
    print(f"cityguard harden: {harden_s:.1f} s (exit {harden_code})")
    print(
        f"lynis hardening index after:  {after[0]} ({len(after[1])} warnings, "
        f"{len(after[2])} suggestions, audit {after_s:.1f} s); gain {after[0] - before[0]} points"
    )
    for warning in sorted(set(before[1]) - set(after[1])):
        print(f"  cleared warning:   {warning}")
    for warning in sorted(set(after[1])):
        print(f"  remaining warning: {warning}")
    for suggestion in sorted(set(before[2]) - set(after[2])):
        print(f"  cleared suggestion:   {suggestion}")
    for suggestion in sorted(set(after[2])):
        print(f"  remaining suggestion: {suggestion}")


def main() -> None:
    """One fresh host per baseline: the default (level 1) and the strict one (levels 1 and 2)."""
    hosts = {"municipal-server": "web1", "municipal-server-strict": "db1"}
    with bench_lab(",".join(hosts.values())) as lab:
        for baseline, host in hosts.items():
            site = lab.site_on_baseline(baseline)

            def audit(host: str = host) -> Report:
                return parse_report(lab.ssh(host, AUDIT))

            before = timed(audit)
            harden = timed(lambda h=host, s=site: lab.cli("harden", "--limit", h, site=s))
            report(baseline, harden, (before, timed(audit)))


if __name__ == "__main__":
    main()
