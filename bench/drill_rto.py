"""Benchmark: the drill's RTO for the example citizen-portal database against a bare
`pg_restore` of the same dump on the same scratch host, in one run.

Lab hosts db1, web1 and scratch1; `cityguard lab data` loads the example data (about 100k
rows and an uploads tree on db1) and cuts scratch1 off (the recovery segment); citizen-portal
is backed up with `cityguard backup run`. Then `cityguard drill run citizen-portal`
(preflight, RPO, restic check, restore of the database and the uploads, verification,
teardown) is timed, and, as the baseline, `pg_restore` alone of the same dump into a fresh
database on scratch1. Prints the seconds of each and the ratio (RTO minus the verification
time) / bare pg_restore; target: at most 1.3x plus the verification time. Run it under the lab
lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchlab import bench_lab

from cityguard import cli
from cityguard.config import cache_dir
from cityguard.drill import restic

PASSWORD = "bench-drill-password"


def main() -> int:
    os.environ["CITYGUARD_RESTIC_PASSWORD"] = PASSWORD
    cli.build_parser()  # registers every area's site section, as the command line does
    with bench_lab("db1,web1,scratch1") as lab:
        config = str(lab.lab.ssh_config)
        # the product's own step: the example database and trees (scratch1 is on its own segment)
        code, out = lab.cli("lab", "data")
        if code != 0:
            print(f"lab data failed ({code}): {out}", file=sys.stderr)
            return 3
        for step in (("backup", "init"), ("backup", "run")):
            code, out = lab.cli(*step, "citizen-portal")
            if code != 0:
                print(f"{' '.join(step)} failed ({code}): {out}", file=sys.stderr)
                return 3
        started = time.perf_counter()
        code, out = lab.cli("drill", "run", "citizen-portal", "--format", "json")
        drill_s = time.perf_counter() - started
        report = json.loads(out)
        if code != 0:
            print(f"drill failed ({code}): {report.get('findings')}", file=sys.stderr)
            return 1
        rto_s = next(m["value"] for m in report["measurements"] if m["name"] == "rto_s")
        steps = report["steps"]
        verify_s = next(s["duration_s"] for s in steps if s["name"] == "verify")

        # baseline: the same dump, restored with pg_restore alone on the same host
        repo = str(lab.state / "restic" / "repos" / "citizen-portal")
        env = {**os.environ, "RESTIC_PASSWORD": PASSWORD}
        binary = str(restic.restic_binary(cache_dir()))
        dump = lab.state / "portal.pgdump"
        snapshots = json.loads(
            subprocess.run(
                [binary, "--repo", repo, "--no-cache", "--json", "snapshots", "--tag",
                 "cg-part=portal-db"],
                env=env, capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
        subprocess.run(
            [binary, "--repo", repo, "--no-cache", "dump", "--target", str(dump),
             snapshots[-1]["id"], "/cityguard/citizen-portal/portal-db.pgdump"],
            env=env, check=True,
        )  # fmt: skip
        subprocess.run(
            ["scp", "-q", "-F", config, str(dump), "scratch1:/tmp/portal.pgdump"], check=True
        )
        lab.ssh(
            "scratch1",
            "sudo sh -c 'install -d -m 2775 -o postgres -g postgres /run/postgresql; "
            "pg_ctlcluster 15 main start; chmod a+r /tmp/portal.pgdump; "
            "runuser -u postgres -- createdb citizen_portal'",
        )
        started = time.perf_counter()
        lab.ssh(
            "scratch1",
            "sudo runuser -u postgres -- pg_restore --exit-on-error -d citizen_portal "
            "/tmp/portal.pgdump",
        )
        bare_s = time.perf_counter() - started
        size_mb = dump.stat().st_size / 1024 / 1024
    print(f"dump:                 {size_mb:.1f} MB (custom format, about 120k rows)")
    print(f"bare pg_restore:      {bare_s:.2f} s  baseline")
    print(f"cityguard drill run:  {drill_s:.2f} s wall, RTO {rto_s:.2f} s", end=", ")
    print(f"verification {verify_s:.2f} s")
    # where the RTO goes: fixed costs (isolation probes, restic check, starting PostgreSQL)
    # dominate a dump this small
    print(
        "drill steps:          " + ", ".join(f"{s['name']} {s['duration_s']:.2f} s" for s in steps)
    )
    ratio = (rto_s - verify_s) / bare_s
    print(f"ratio (RTO - verification) / bare pg_restore: {ratio:.2f}x (target at most 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
