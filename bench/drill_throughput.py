"""Benchmark: restic 0.19.1 backup and restore throughput against `cp -a` on the same data.

One run, same machine, same data: a tree of mixed files (many small text files, some medium
binary ones, a few large ones; half of the bytes incompressible) of CG_BENCH_MB megabytes
(default 1024), copied with `cp -a` (the baseline), backed up into a fresh local repository
and restored from it. Prints seconds and MB/s of each, and the ratios backup/cp and
restore/cp as throughput shares (1.0 = as fast as cp). Also the overhead of cityguard's
restic runner (password from a secret reference, typed errors, JSON parsing) over bare restic
on a second backup of the same data.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cityguard.config.paths import cache_dir
from cityguard.core.secrets import SecretRef
from cityguard.drill import restic
from cityguard.drill.runner import Restic

PASSWORD = "bench-password-not-secret"
ROUNDS = 5


def make_tree(root: Path, total_mb: int) -> int:
    """Mixed files, deterministic sizes; returns the bytes written."""
    written = 0
    budget = total_mb * 1024 * 1024
    index = 0
    while written < budget:
        kind = index % 100
        if kind < 80:
            size = 4096 + (index % 7) * 1000  # small text
        elif kind < 98:
            size = 1024 * 1024  # medium binary
        else:
            size = 32 * 1024 * 1024
        size = min(size, budget - written)
        path = root / f"d{index % 50:02d}" / f"f{index:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind < 80:
            line = f"record {index} of the city registry, department {index % 13}\n".encode()
            data = (line * (size // len(line) + 1))[:size]
        else:
            half = size // 2
            data = os.urandom(half) + bytes(size - half)
        path.write_bytes(data)
        written += size
        index += 1
    return written


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.monotonic() - start


def main() -> int:
    binary = restic.restic_binary(cache_dir())
    if not binary.exists():
        print("restic is not built: run tools/components/restic.sh", file=sys.stderr)
        return 2
    total_mb = int(os.environ.get("CG_BENCH_MB", "1024"))
    work = Path(tempfile.mkdtemp(prefix="cg-bench-drill-", dir="/var/tmp"))
    try:
        source = work / "source"
        size = make_tree(source, total_mb)
        subprocess.run(["sync"], check=True)
        mb = size / 1024 / 1024
        cp_s = timed(["cp", "-a", str(source), str(work / "copy")])
        env = {**os.environ, "RESTIC_PASSWORD": PASSWORD}
        repo = str(work / "repo")
        base = [str(binary), "--repo", repo, "--no-cache", "--json"]
        subprocess.run([*base, "init"], check=True, env=env, stdout=subprocess.DEVNULL)
        backup_s = timed([*base, "backup", "--host", "bench", str(source)], env)
        restore_s = timed([*base, "restore", "latest", "--target", str(work / "restored")], env)
        # second backups of the same data: bare restic, then through cityguard's runner
        os.environ["CG_BENCH_RESTIC_PASSWORD"] = PASSWORD
        runner = Restic(restic.Repo(repo, str(binary)), SecretRef.env("CG_BENCH_RESTIC_PASSWORD"))
        bare, wrapped = [], []
        for _ in range(ROUNDS):  # alternated, medians: the machine is shared and noisy
            bare.append(timed([*base, "backup", "--force", "--host", "bench", str(source)], env))
            start = time.monotonic()
            runner.run(("backup", "--force", "--host", "bench", str(source)), "bench backup")
            wrapped.append(time.monotonic() - start)
        bare_s, wrapped_s = statistics.median(bare), statistics.median(wrapped)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"data:            {mb:.0f} MB of mixed files")
    print(f"cp -a:           {cp_s:.2f} s  ({mb / cp_s:.0f} MB/s)  baseline")
    print(f"restic backup:   {backup_s:.2f} s  ({mb / backup_s:.0f} MB/s)", end="  ")
    print(f"ratio {cp_s / backup_s:.2f}x of cp")
    print(f"restic restore:  {restore_s:.2f} s  ({mb / restore_s:.0f} MB/s)", end="  ")
    print(f"ratio {cp_s / restore_s:.2f}x of cp")
    overhead = (wrapped_s - bare_s) / bare_s * 100
    print(
        f"second backup (median of {ROUNDS}): bare {bare_s:.2f} s, "
        f"through cityguard's runner {wrapped_s:.2f} s "
        f"({overhead:+.1f}%, target at most +5%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
