"""Project-wide test rules.

Under CI=true a skipped test is a failure: a green run must mean the real thing ran (lab hosts,
PostgreSQL, ...), never that it was quietly left out.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Generator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    """Register every area's site section once, as the command line does before any command, so
    a test that loads the example site (which has drill, eidas and ipv6 sections) does not
    depend on another test having built the parser first."""
    from cityguard.cli.main import build_parser

    build_parser()
    signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, `kill`) ends the session as Ctrl-C does: pytest then tears down
    the session fixtures, so the lab, Keycloak and PostgreSQL are stopped, not orphaned."""
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
