"""Shared by the benchmarks: a lab for the example site in a temporary state directory.

Benchmarks print seconds and a ratio against a baseline measured in the same run, because
these machines are noisy; they are run by hand (`make bench`), never as timed unit tests.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cityguard import cli
from cityguard.config import cache_dir, content_root, load_site
from cityguard.lab import Lab
from cityguard.lab import lab as lab_engine
from cityguard.lab.site import host_specs, lab_description

SITE = content_root() / "examples" / "site" / "site.yml"
T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


@dataclass
class BenchLab:
    state: Path
    lab: Lab
    previous_state: str | None

    @classmethod
    def start(cls, limit: str, flavour: str = "nspawn") -> BenchLab:
        """Lab hosts for the example site's `limit`, in a fresh temporary state directory."""
        state = Path(tempfile.mkdtemp(prefix="cgb-", dir="/tmp"))
        previous = os.environ.get("CITYGUARD_STATE")
        os.environ["CITYGUARD_STATE"] = str(state)
        try:
            cli.build_parser()  # every area's site section registered, as before any command
            site = load_site(SITE)
            lab = lab_engine.up(
                state,
                cache_dir(),
                host_specs(site, limit),
                flavour,
                description=lab_description(site),
            )
        except BaseException:
            cls(state, None, previous).stop()  # type: ignore[arg-type]
            raise
        return cls(state, lab, previous)

    def stop(self) -> None:
        try:
            lab_engine.down(self.state)
        finally:
            shutil.rmtree(self.state, ignore_errors=True)
            if self.previous_state is None:
                os.environ.pop("CITYGUARD_STATE", None)
            else:
                os.environ["CITYGUARD_STATE"] = self.previous_state

    def cli(self, *args: str, site: Path = SITE) -> tuple[int, str]:
        """Run a cityguard command against this lab; returns exit code and stdout."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main([*args, "--site", str(site), "-q"])
        return code, out.getvalue()

    def site_on_baseline(self, baseline: str) -> Path:
        """The example site (same name, so the same lab) on another baseline."""
        target = self.state / f"site-{baseline}"
        shutil.copytree(SITE.parent, target)
        site = yaml.safe_load((target / SITE.name).read_text())
        site["baseline"] = baseline
        (target / SITE.name).write_text(yaml.safe_dump(site))
        return target / SITE.name

    def check(self, limit: str) -> tuple[float, dict[str, Any]]:
        seconds, (_code, out) = timed(
            lambda: self.cli("check", "--format", "json", "--limit", limit)
        )
        return seconds, json.loads(out)

    def ssh(self, host: str, command: str, reuse: bool = True) -> str:
        argv = ["ssh", "-F", str(self.lab.ssh_config)]
        if not reuse:
            argv += ["-o", "ControlPath=none"]
        return subprocess.run(
            [*argv, host, command], capture_output=True, text=True, check=True
        ).stdout


@contextlib.contextmanager
def bench_lab(limit: str) -> Iterator[BenchLab]:
    """A BenchLab removed afterwards whatever happens."""
    lab = BenchLab.start(limit)
    try:
        yield lab
    finally:
        lab.stop()


def checks_per_host(report: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    for control in report["controls"]:
        for check in control["checks"]:
            key = (check["host"], check["check_id"])
            if key not in seen:  # a check proving two controls is one check
                seen.add(key)
                counts[check["host"]] = counts.get(check["host"], 0) + 1
    return counts
