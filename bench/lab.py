"""Benchmark: lab up (3 hosts, from the cached image), a check run, lab down.

Prints seconds and ratios against baselines measured in the same run, because these machines
are noisy:
- lab up vs unpacking the image once (what a lab without overlays would do for every host);
- the check run vs running the same number of trivial SSH commands serially, each over a
  fresh connection (what one-command-per-assertion tools pay).
Run as root: `make bench` (or .venv/bin/python bench/lab.py). LAB.md target: 3 hosts < 10 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from cityguard import cli
from cityguard.config import cache_dir, content_root
from cityguard.lab import HostSpec
from cityguard.lab import lab as lab_engine
from cityguard.lab.image import ensure_image

SITE = content_root() / "examples" / "site" / "site.yml"
HOSTS = [HostSpec("web1", ("web",)), HostSpec("db1", ("db",)), HostSpec("scratch1", ("scratch",))]


def timed(action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def unpack_baseline() -> float:
    image = ensure_image(cache_dir())
    with tempfile.TemporaryDirectory(dir=image.archive.parent) as target:
        seconds, _ = timed(lambda: subprocess.run(
            ["tar", "--zstd", "-xf", str(image.archive), "-C", target], check=True))
    return seconds


def check_run(state: Path) -> tuple[float, int]:
    """One `cityguard check` of every lab host; returns seconds and checks run."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_env("CITYGUARD_STATE", str(state)))
        out = io.StringIO()
        stack.enter_context(contextlib.redirect_stdout(out))
        seconds, _code = timed(lambda: cli.main(["check", "--site", str(SITE), "--format",
                                                "json", "--limit", "web1,db1,scratch1"]))
    report = json.loads(out.getvalue())
    checks = sum(len(c["checks"]) for c in report["controls"])
    return seconds, checks


@contextlib.contextmanager
def _env(name: str, value: str):  # type: ignore[no-untyped-def]
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def serial_ssh_baseline(lab: lab_engine.Lab, count: int) -> float:
    def run_all() -> None:
        for index in range(count):
            host = lab.hosts[index % len(lab.hosts)].name
            subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "ControlPath=none", host,
                            "true"], check=True)
    seconds, _ = timed(run_all)
    return seconds


def main() -> None:
    baseline_unpack = unpack_baseline()
    state = Path(tempfile.mkdtemp(prefix="cgb-", dir="/tmp"))
    try:
        up_s, lab = timed(lambda: lab_engine.up(state, cache_dir(), HOSTS))
        check_s, checks = check_run(state)
        ssh_s = serial_ssh_baseline(lab, checks)
        down_s, _ = timed(lambda: lab_engine.down(state))
    finally:
        lab_engine.down(state)
        shutil.rmtree(state, ignore_errors=True)
    print(f"lab up, {len(HOSTS)} hosts from cache: {up_s:6.2f} s "
          f"(target < 10 s; baseline: unpacking the image once {baseline_unpack:.2f} s, "
          f"ratio {up_s / baseline_unpack:.2f})")
    print(f"check run, {checks} checks on {len(HOSTS)} hosts: {check_s:6.2f} s, "
          f"{checks / check_s:.0f} checks/s (baseline: {checks} trivial SSH commands serially "
          f"{ssh_s:.2f} s, ratio {check_s / ssh_s:.2f})")
    print(f"lab down: {down_s:6.2f} s")


if __name__ == "__main__":
    main()
