"""The pytest plugin loaded into each per-host check run (`-p cityguard.verify.plugin`).

It gives checks their fixtures (facts, expect, param) and writes one JSON line per check with
the control ids, outcome, observed and expected values, which the engine turns into evidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import testinfra

import cityguard.verify.sections  # noqa: F401  (registers every area's fact sections)
from cityguard.verify.expectations import NOT_APPLICABLE_PREFIX, Expect
from cityguard.verify.facts import HostFacts, collect
from cityguard.verify.reachability import ssh_failure

RESULT_KEY = pytest.StashKey[dict[str, Any]]()
EXPECT_KEY = pytest.StashKey[Expect]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cityguard")
    group.addoption("--cityguard-results", help="JSON lines file for check results")
    group.addoption("--cityguard-host", help="the host's inventory name")
    group.addoption("--cityguard-params", help="JSON file: control id -> parameters")
    group.addoption("--cityguard-controls", help="comma-separated control ids to run")
    group.addoption(
        "--cityguard-inventory-list",
        help="the inventory as `ansible-inventory --list` prints it (read instead of running it)",
    )
    group.addoption(
        "--cityguard-collect",
        help="write a JSON object of check id -> control ids for every collected check",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "controls(*ids): the control ids this check proves")
    listing = config.getoption("cityguard_inventory_list")
    if listing:
        _read_inventory_from(Path(listing))


def _read_inventory_from(listing: Path) -> None:
    """testinfra's ansible backend lists the inventory by starting `ansible-inventory --list`;
    the engine wrote that listing already, so it is read instead."""
    from testinfra.utils import ansible_runner

    data = json.loads(listing.read_text())

    def listed(config: Any, inventory_file: str | None) -> Any:
        return data

    ansible_runner.get_ansible_inventory = listed


def controls_of(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("controls")
    return tuple(marker.args) if marker else ()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the collect file lists every check, before -k, -m or --cityguard-controls
    collect_file = config.getoption("cityguard_collect")
    if collect_file:
        table = {_check_id(item): list(controls_of(item)) for item in items}
        Path(collect_file).write_text(json.dumps(table, indent=1, sort_keys=True))
    for item in items:
        _plain_failures(item)
    wanted = config.getoption("cityguard_controls")
    if not wanted:
        return
    selected = set(wanted.split(","))
    keep = [item for item in items if not controls_of(item) or selected & set(controls_of(item))]
    deselected = [item for item in items if item not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = keep


def _plain_failures(item: pytest.Item) -> None:
    """A failure's report is its exception line only. pytest would format a long traceback
    with source for every failing check (about 0.1 s each, most of a run on an unhardened
    host), which nobody reads: the evidence keeps the exception line and the observed values."""

    def exception_line(excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return excinfo.exconly()

    item._repr_failure_py = exception_line  # type: ignore[method-assign,assignment]


@pytest.fixture(scope="session")
def facts(request: pytest.FixtureRequest) -> HostFacts:
    """The host's state, gathered once per run in a single SSH round trip."""
    spec = request.config.getoption("hosts")
    host = testinfra.get_host(spec) if spec else testinfra.get_host("local://")

    def run_as_root(command: str) -> tuple[int, str, str]:
        with host.sudo():
            try:
                result = host.run(command)
            except RuntimeError as error:
                unreachable = ssh_failure(error)
                if unreachable is None:
                    raise
                raise unreachable from None  # one line, not the command's 500-character repr
        return result.rc, result.stdout, result.stderr

    return collect(run_as_root)


@pytest.fixture
def expect(request: pytest.FixtureRequest) -> Expect:
    recorder = Expect()
    request.node.stash[EXPECT_KEY] = recorder
    return recorder


@pytest.fixture(scope="session")
def param(request: pytest.FixtureRequest) -> Callable[[str, str], Any]:
    """`param(control_id, name)`: the value the baseline and site chose for a control."""
    path = request.config.getoption("cityguard_params")
    table: dict[str, dict[str, Any]] = json.loads(Path(path).read_text()) if path else {}

    def lookup(control_id: str, name: str) -> Any:
        try:
            return table[control_id][name]
        except KeyError:
            raise KeyError(f"no parameter {name!r} for control {control_id}") from None

    return lookup


def _check_id(item: pytest.Item) -> str:
    return f"{Path(str(item.path)).stem}::{item.name}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    record = item.stash.setdefault(
        RESULT_KEY,
        {
            "check_id": _check_id(item),
            "controls": list(controls_of(item)),
            "outcome": "pass",
            "observed": None,
            "expected": None,
            "reason": None,
            "started": time.time(),
        },
    )
    if not record["controls"] and report.when == "setup":
        record.update(outcome="error", reason="this check names no control")
        return
    if report.passed or record["outcome"] not in ("pass",):
        return
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else "skipped"
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(NOT_APPLICABLE_PREFIX):
            record.update(outcome="not-applicable", reason=reason[len(NOT_APPLICABLE_PREFIX) :])
        else:
            record.update(outcome="error", reason=f"did not run: {reason}")
    elif report.failed:
        excinfo = call.excinfo
        is_assertion = (
            report.when == "call" and excinfo is not None and excinfo.errisinstance(AssertionError)
        )
        message = excinfo.exconly().splitlines()[0] if excinfo is not None else report.when
        record.update(
            outcome="fail" if is_assertion else "error",
            reason=message.removeprefix("AssertionError: ")[:500],
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    yield
    record = item.stash.get(RESULT_KEY, None)
    path = item.config.getoption("cityguard_results")
    if record is None or not path:
        return
    expectation = item.stash.get(EXPECT_KEY, None)
    if expectation is not None and expectation.observed:
        record["observed"] = "; ".join(expectation.observed)
        record["expected"] = "; ".join(expectation.expected)
    record["duration_s"] = round(time.time() - record.pop("started"), 4)
    record["host"] = item.config.getoption("cityguard_host") or "localhost"
    with Path(path).open("a") as stream:
        stream.write(json.dumps(record) + "\n")
