"""Benchmark: the drill's RTO for the example citizen-portal database against a bare
`pg_restore` of the same dump on the same scratch host, in one run, at two sizes.

Lab hosts db1, web1 and scratch1; `cityguard lab data` loads the example data (about 100k
rows and an uploads tree on db1) and cuts scratch1 off (the recovery segment); citizen-portal
is backed up with `cityguard backup run`. Then `cityguard drill run citizen-portal`
(preflight, RPO, restic check, restore of the database and the uploads, verification,
teardown) is timed, in turn with the baseline: `pg_restore` alone of the same dump into a
fresh database on scratch1 whose PostgreSQL already runs. Each is run REPEAT times and the
medians are compared, because one drill of a large database varies by seconds on this kind
of shared machine.

The example dump is about 1 MB, so the drill's fixed costs (SSH round trips, restic opening
the repository, starting PostgreSQL, the uploads) decide its ratio. The same measurement is
then repeated after adding BULK_ROWS rows to the database (a city system's size: a dump of
tens of MB), where the restore itself dominates. For each size it prints the seconds and the
ratio (RTO minus the verification time) / bare pg_restore; target: at most 1.3x plus the
verification time. Run it under the lab lock.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchlab import BenchLab, bench_lab

from cityguard import cli
from cityguard.config import cache_dir
from cityguard.drill import restic

PASSWORD = "bench-drill-password"
REPEAT = 3  # drills and bare restores per size, alternated; the medians are printed
BULK_ROWS = 6_000_000
ADD_BULK = (
    "CREATE TABLE bench_bulk AS SELECT g AS id, md5(g::text) AS token, "
    "now() - g * interval '1 second' AS at "
    f"FROM generate_series(1, {BULK_ROWS}) AS g; ALTER TABLE bench_bulk ADD PRIMARY KEY (id)"
)


@dataclass(frozen=True)
class Measured:
    dump_mb: float
    bare_s: float
    rto_s: float
    verify_s: float
    steps: str

    @property
    def ratio(self) -> float:
        return (self.rto_s - self.verify_s) / self.bare_s


def measure(lab: BenchLab) -> Measured | None:
    """Back up once; then, REPEAT times in turn, a drill and pg_restore alone of the same dump.
    The medians are kept: one drill of a large database varies by seconds here."""
    code, out = lab.cli("backup", "run", "citizen-portal")
    if code != 0:
        print(f"backup run failed ({code}): {out}", file=sys.stderr)
        return None
    dump = lab.state / "portal.pgdump"
    copy_dump_to_scratch(lab, dump)
    drills: list[tuple[float, float, str]] = []
    bare: list[float] = []
    for _ in range(REPEAT):
        drilled = drill(lab)
        if drilled is None:
            return None
        drills.append(drilled)
        bare.append(bare_pg_restore(lab))
    lab.ssh("scratch1", "sudo rm -f /tmp/portal.pgdump")
    rto_s, verify_s, steps = sorted(drills)[len(drills) // 2]
    return Measured(
        dump.stat().st_size / 1024 / 1024, statistics.median(bare), rto_s, verify_s, steps
    )


def drill(lab: BenchLab) -> tuple[float, float, str] | None:
    """One drill: its RTO, its verification time and its steps."""
    code, out = lab.cli("drill", "run", "citizen-portal", "--format", "json")
    report = json.loads(out)
    if code != 0:
        print(f"drill failed ({code}): {report.get('findings')}", file=sys.stderr)
        return None
    rto_s = next(m["value"] for m in report["measurements"] if m["name"] == "rto_s")
    verify_s = next(s["duration_s"] for s in report["steps"] if s["name"] == "verify")
    steps = ", ".join(f"{s['name']} {s['duration_s']:.2f} s" for s in report["steps"])
    return rto_s, verify_s, steps


def copy_dump_to_scratch(lab: BenchLab, dump: Path) -> None:
    """The newest backup's dump, out of the repository and onto scratch1 as /tmp/portal.pgdump."""
    repo = str(lab.state / "restic" / "repos" / "citizen-portal")
    env = {**os.environ, "RESTIC_PASSWORD": PASSWORD}
    binary = str(restic.restic_binary(cache_dir()))
    dump.unlink(missing_ok=True)
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
    config = str(lab.lab.ssh_config)
    subprocess.run(
        ["scp", "-q", "-F", config, str(dump), "scratch1:/tmp/portal.pgdump"], check=True
    )
    lab.ssh("scratch1", "sudo chmod a+r /tmp/portal.pgdump")


def bare_pg_restore(lab: BenchLab) -> float:
    """Seconds of pg_restore alone into a fresh database on scratch1, PostgreSQL already up."""
    lab.ssh(
        "scratch1",
        "sudo sh -c 'install -d -m 2775 -o postgres -g postgres /run/postgresql; "
        "pg_ctlcluster 15 main start; "
        "runuser -u postgres -- dropdb --if-exists citizen_portal; "
        "runuser -u postgres -- createdb citizen_portal'",
    )
    started = time.perf_counter()
    lab.ssh(
        "scratch1",
        "sudo runuser -u postgres -- pg_restore --exit-on-error -d citizen_portal "
        "/tmp/portal.pgdump",
    )
    bare_s = time.perf_counter() - started
    lab.ssh(
        "scratch1",
        "sudo sh -c 'runuser -u postgres -- dropdb citizen_portal; pg_ctlcluster 15 main stop'",
    )
    return bare_s


def show(label: str, result: Measured) -> None:
    print(f"{label}: dump {result.dump_mb:.1f} MB (custom format)")
    print(f"  bare pg_restore:      {result.bare_s:.2f} s  baseline (median of {REPEAT})")
    print(
        f"  cityguard drill run:  RTO {result.rto_s:.2f} s (median of {REPEAT}), "
        f"verification {result.verify_s:.2f} s"
    )
    print(f"  drill steps:          {result.steps}")
    print(
        f"  ratio (RTO - verification) / bare pg_restore: {result.ratio:.2f}x (target at most 1.3x)"
    )


def main() -> int:
    os.environ["CITYGUARD_RESTIC_PASSWORD"] = PASSWORD
    cli.build_parser()  # registers every area's site section, as the command line does
    with bench_lab("db1,web1,scratch1") as lab:
        # the product's own step: the example database and trees (scratch1 is on its own segment)
        code, out = lab.cli("lab", "data")
        if code == 0:
            code, out = lab.cli("backup", "init", "citizen-portal")
        if code != 0:
            print(f"setting up failed ({code}): {out}", file=sys.stderr)
            return 3
        example = measure(lab)
        if example is None:
            return 1
        add_bulk = shlex.join(["psql", "-q", "-d", "citizen_portal", "-c", ADD_BULK])
        lab.ssh("db1", f"sudo runuser -u postgres -- {add_bulk}")
        bulk = measure(lab)
        if bulk is None:
            return 1
    show("example database (about 120k rows)", example)
    show(f"with {BULK_ROWS:,} more rows", bulk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
