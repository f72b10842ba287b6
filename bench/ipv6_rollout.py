"""Benchmark: first and second `cityguard ipv6 rollout` on fresh lab hosts, and the gate.

The example site's four hosts (router1 also serves the plan's zones with unbound); harden's
firewall controls first (the gate's CG-IPV6-011/012 judge the firewall), not timed. The second
rollout changes nothing on a host already as planned but still runs every phase and every gate;
it must take at most 40% of the first, as for harden. Gate seconds are the IPv6 checks run
after each phase.
"""

from __future__ import annotations

from benchlab import SITE, bench_lab, timed

from cityguard.cli.main import build_parser
from cityguard.ipv6.rollout_action import RolloutOutcome, ipv6_rollout
from cityguard.workspace import open_workspace

HOSTS = "router1,db1,scratch1,web1"
FIREWALL = "CG-FW-001,CG-FW-002,CG-FW-003,CG-FW-004"


def rollout() -> RolloutOutcome:
    return ipv6_rollout(open_workspace(SITE), batch_size=2)


def main() -> None:
    build_parser()  # every area's site section registered, as before any command
    with bench_lab(HOSTS) as lab:
        code, _ = lab.cli("harden", "--controls", FIREWALL)
        if code != 0:
            raise SystemExit(f"harden (firewall) exited {code}")
        first_s, first = timed(rollout)
        second_s, second = timed(rollout)
    for name, seconds, outcome in (("1st", first_s, first), ("2nd", second_s, second)):
        gates = ", ".join(f"{s:.2f}" for s in outcome.gate_seconds)
        print(
            f"ipv6 rollout {name} run (4 hosts, routers + canary + 1 batch): {seconds:.2f} s "
            f"(exit {int(outcome.exit_code)}; changed {sum(outcome.changed.values())}; "
            f"gates {gates} s)" + (f"; {outcome.failure}" if outcome.failure else "")
        )
    print(f"ratio 2nd/1st: {second_s / first_s:.2f} (target <= 0.40)")


if __name__ == "__main__":
    main()
