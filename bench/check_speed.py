"""Benchmark: a full `cityguard check` on 1 host and on 4 hosts, checks per second.

Baseline measured in the same run: the same number of trivial SSH commands run serially over
a shared connection (ControlMaster), i.e. the cost of one SSH round trip per assertion even
with connection reuse. Target: >= 300 checks per host in under 6 s (goss publishes about 5 s
for 338 checks; OpenSCAP's CIS profile takes minutes).
"""

from __future__ import annotations

from benchlab import bench_lab, checks_per_host, timed

ALL = "web1,db1,router1,scratch1"


def main() -> None:
    with bench_lab(ALL) as lab:
        lab.cli("harden", "--limit", ALL)  # a hardened fleet is the usual state when checks run
        one_s, one = lab.check("web1")
        all_s, every = lab.check(ALL)
        per_host = checks_per_host(one)["web1"]
        total = sum(checks_per_host(every).values())
        lab.ssh("web1", "true")  # open the shared connection first, as a fair baseline
        ssh_s, _ = timed(lambda: [lab.ssh("web1", "true") for _ in range(per_host)])
    print(
        f"check, 1 host: {per_host} checks in {one_s:.2f} s ({per_host / one_s:.0f} checks/s;"
        f" target >= 300 checks in < 6 s)"
    )
    print(f"check, 4 hosts: {total} checks in {all_s:.2f} s ({total / all_s:.0f} checks/s)")
    print(
        f"baseline: {per_host} trivial SSH commands serially over a shared connection "
        f"{ssh_s:.2f} s; ratio check/baseline {one_s / ssh_s:.2f}"
    )


if __name__ == "__main__":
    main()
