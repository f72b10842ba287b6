"""Benchmark: `cityguard check` on 1 host and on 4 hosts, checks per second, and one host end
to end (the command line started to its exit, as an operator or CI waits for it).

Baselines measured in the same run: the same number of trivial SSH commands run serially over
a shared connection (ControlMaster), i.e. the cost of one SSH round trip per assertion even
with connection reuse; and `python -c pass`, the floor of any command line started. Targets:
>= 300 checks per host in under 6 s (goss publishes about 5 s for 338 checks; OpenSCAP's CIS
profile takes minutes); one host end to end in at most 4 s, beside the inner check run (the
per-host check processes alone), with the controller CPU the command used.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlab import SITE, bench_lab, checks_per_host, timed

from cityguard.cli.main import build_parser
from cityguard.verify import CheckRun, run_checks
from cityguard.workspace import open_workspace

ALL = "web1,db1,router1,scratch1"
RUNS = 3
END_TO_END_TARGET_S = 4.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command_line(argv: list[str]) -> tuple[float, float]:
    """Median wall seconds and median controller CPU seconds of a command, over RUNS runs."""
    walls, cpus = [], []
    for _ in range(RUNS):
        cpu = children_cpu()
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, env=os.environ.copy())
        walls.append(time.perf_counter() - started)
        cpus.append(children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def inner_check_run(limit: str) -> float:
    """The per-host check processes alone, as the check action starts them."""
    workspace = open_workspace(SITE)
    selection = workspace.selection.for_hosts()
    run_dir = workspace.new_run_dir("bench-inner")
    run = CheckRun(
        checks_dir=workspace.content_dir / "checks",
        inventory=workspace.write_inventory(run_dir),
        hosts=workspace.inventory.select(limit),
        controls=selection.control_ids,
        parameters=selection.parameters,
    )
    return statistics.median(timed(lambda: run_checks(run))[0] for _ in range(RUNS))


def main() -> None:
    build_parser()  # every area's site section registered, as before any command
    cityguard = str(Path(sys.executable).parent / "cityguard")
    with bench_lab(ALL) as lab:
        lab.cli("harden", "--limit", ALL)  # a hardened fleet is the usual state when checks run
        one_s, one = lab.check("web1")
        all_s, every = lab.check(ALL)
        per_host = checks_per_host(one)["web1"]
        total = sum(checks_per_host(every).values())
        lab.ssh("web1", "true")  # open the shared connection first, as a fair baseline
        ssh_s, _ = timed(lambda: [lab.ssh("web1", "true") for _ in range(per_host)])
        e2e_s, e2e_cpu = command_line(
            [cityguard, "check", "--site", str(SITE), "--limit", "web1", "-q", "--format", "json"]
        )
        inner_s = inner_check_run("web1")
        pass_s, _ = command_line([sys.executable, "-c", "pass"])
    print(
        f"check, 1 host: {per_host} checks in {one_s:.2f} s ({per_host / one_s:.0f} checks/s;"
        f" target >= 300 checks in < 6 s)"
    )
    print(f"check, 4 hosts: {total} checks in {all_s:.2f} s ({total / all_s:.0f} checks/s)")
    print(
        f"baseline: {per_host} trivial SSH commands serially over a shared connection "
        f"{ssh_s:.2f} s; ratio check/baseline {one_s / ssh_s:.2f}"
    )
    print(
        f"check --limit web1 end to end (median of {RUNS}): {e2e_s:.2f} s "
        f"(target <= {END_TO_END_TARGET_S:.0f} s), controller CPU {e2e_cpu:.2f} s; "
        f"inner check run {inner_s:.2f} s; python -c pass {pass_s:.3f} s; "
        f"ratio end-to-end/inner {e2e_s / inner_s:.2f}, end-to-end/python {e2e_s / pass_s:.0f}"
    )


if __name__ == "__main__":
    main()
