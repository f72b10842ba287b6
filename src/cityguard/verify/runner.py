"""Run the check suites against every host in parallel, one pytest process per host.

A process per host keeps each host's fact cache and failures separate: an unreachable host
turns into `error` results for that host alone while the others complete.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityguard.core import process
from cityguard.core.errors import CityguardError
from cityguard.core.records import CheckResult, Outcome
from cityguard.core.secrets import redact
from cityguard.verify.reachability import as_unreachable, one_line, unreachable_why

#: The longest problem line said for a host (a failed pytest run quotes its last lines).
MAX_PROBLEM = 400


class VerifyError(CityguardError):
    """The check run itself could not start (not a failing check)."""


@dataclass(frozen=True)
class CheckRun:
    """What to check where: the suites, the inventory to reach hosts, and the chosen controls."""

    checks_dir: Path
    inventory: Path
    hosts: list[str]
    controls: list[str]
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    parallel: int = 8
    #: A host that stops answering mid-run (sshd frozen, network gone without a reset) must
    #: not hold the whole check: past this many seconds its run is stopped and reported.
    host_timeout_s: float = 300.0


@dataclass
class HostRun:
    host: str
    results: list[CheckResult]
    problem: str | None = None  # set when the host's run as a whole failed (e.g. unreachable)
    unreachable: bool = False  # SSH could not reach the host: problem says why, in one line


def pytest_argv(run: CheckRun, host: str, results_file: Path, params_file: Path) -> list[str]:
    """The per-host pytest command line; testinfra's ansible backend reads the inventory."""
    return [
        sys.executable,
        "-m",
        "pytest",
        str(run.checks_dir),
        "-p",
        "cityguard.verify.plugin",
        "-p",
        "no:cacheprovider",
        # checks assert through `expect`, never bare `assert`: rewriting every module's asserts
        # (not cached: no bytecode is written) cost half the collection's CPU
        "--assert=plain",
        "-q",
        "--no-header",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "--rootdir",
        str(run.checks_dir),
        f"--hosts=ansible://{host}?ansible_inventory={run.inventory}",
        f"--cityguard-host={host}",
        f"--cityguard-results={results_file}",
        f"--cityguard-params={params_file}",
        f"--cityguard-controls={','.join(run.controls)}",
    ]


def parse_results(lines: list[str]) -> list[CheckResult]:
    results = []
    for line in lines:
        data = json.loads(line)
        results.append(
            CheckResult(
                check_id=data["check_id"],
                host=data["host"],
                controls=tuple(data["controls"]),
                outcome=Outcome(data["outcome"]),
                observed=data.get("observed"),
                expected=data.get("expected"),
                reason=data.get("reason"),
                duration_s=float(data.get("duration_s", 0.0)),
            )
        )
    return results


def check_host(run: CheckRun, host: str) -> HostRun:
    with tempfile.TemporaryDirectory(prefix="cityguard-check-") as scratch:
        results_file = Path(scratch) / "results.jsonl"
        params_file = Path(scratch) / "params.json"
        params_file.write_text(json.dumps(run.parameters))
        env = {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        try:
            completed = process.run(
                pytest_argv(run, host, results_file, params_file),
                what=f"checking {host}",
                timeout=run.host_timeout_s,
                env=env,
                check=False,
            )
        except process.ProcessError as error:
            completed, broken = None, error
        lines = results_file.read_text().splitlines() if results_file.exists() else []
    results = parse_results(lines)
    if completed is None:  # the checks that finished are kept; the host's problem says why
        if broken.failure != "timed-out":
            return HostRun(host, results, str(broken))
        return HostRun(
            host,
            results,
            f"check did not finish within {run.host_timeout_s:g} s and was stopped "
            f"({len(lines)} checks had finished): the host stopped answering",
        )
    # pytest: 0 all passed, 1 some failed; anything else means the run itself broke
    if completed.returncode not in (0, 1) or not results:
        tail = (completed.stdout + completed.stderr).strip().splitlines()[-3:]
        return HostRun(
            host,
            results,
            f"check run failed (pytest rc={completed.returncode}): " + " | ".join(tail),
        )
    # such a check would fall outside every control's roll-up, so say so for the host
    orphans = [r.check_id for r in results if not r.controls]
    if orphans:
        return HostRun(host, results, "checks that name no control: " + ", ".join(orphans))
    return HostRun(host, results)


def host_problem(results: list[CheckResult]) -> str | None:
    """When every check errored the same way (e.g. SSH refused), say it once for the host."""
    reasons = {r.reason for r in results if r.outcome is Outcome.ERROR}
    if results and all(r.outcome is Outcome.ERROR for r in results) and len(reasons) == 1:
        return reasons.pop()
    return None


def summarise(host_run: HostRun) -> HostRun:
    """The host's run as it is reported: an unreachable host is one problem line saying why,
    and each of its checks an error with the short reason "host unreachable"; any other problem
    of the host is one line. Problems are redacted (they quote what the host or SSH said)."""
    why = unreachable_why(host_run.results)
    if why is not None:
        results = as_unreachable(host_run.results)
        return HostRun(host_run.host, results, f"unreachable: {why}", unreachable=True)
    problem = host_run.problem or host_problem(host_run.results)
    if problem is not None:
        problem = one_line(redact(problem), MAX_PROBLEM)
    return HostRun(host_run.host, host_run.results, problem)


def run_checks(
    run: CheckRun, on_host_done: Callable[[HostRun], None] | None = None
) -> list[HostRun]:
    """Check every host; never raises for a host problem, which is reported per host."""
    if not run.checks_dir.is_dir():
        raise VerifyError(f"checks directory not found: {run.checks_dir}")
    if not run.hosts:
        raise VerifyError("no hosts selected")

    def one(host: str) -> HostRun:
        host_run = summarise(check_host(run, host))
        if on_host_done:
            on_host_done(host_run)
        return host_run

    with ThreadPoolExecutor(max_workers=max(1, min(run.parallel, len(run.hosts)))) as pool:
        return list(pool.map(one, run.hosts))
