"""What `cityguard check` says about an unreachable host: one line, no per-control rows, exit 3,
and still an `error` result for every selected control in the evidence."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from cityguard.check.action import exit_code_for, with_missing_controls
from cityguard.cli.main import build_parser
from cityguard.config import content_root
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import CheckResult, Outcome, roll_up_all
from cityguard.evidence import RunRecord
from cityguard.evidence.view import RunEvidence, check_summary, controls_json, show_run
from cityguard.verify.reachability import UNREACHABLE
from cityguard.verify.runner import HostRun
from cityguard.workspace import open_workspace

SITE = content_root() / "examples" / "site" / "site.yml"
WHY = "unreachable: ssh: connect to host 10.77.0.12 port 22: No route to host"


def host_runs() -> list[HostRun]:
    reached = HostRun(
        "web1",
        [
            CheckResult("test_ssh::a", "web1", ("CG-SSH-001",), Outcome.PASS),
            CheckResult("test_ssh::b", "web1", ("CG-SSH-003",), Outcome.FAIL, observed="6"),
        ],
    )
    gone = HostRun(
        "db1",
        [CheckResult("test_ssh::a", "db1", ("CG-SSH-001",), Outcome.ERROR, reason=UNREACHABLE)],
        WHY,
        unreachable=True,
    )
    return [reached, gone]


def rendered(hosts: list[HostRun], checks: list[CheckResult]) -> str:
    out = io.StringIO()
    check_summary(Console(file=out, width=100), roll_up_all(checks), hosts, "r1")
    return out.getvalue()


def test_every_control_of_an_unreachable_host_is_an_error_in_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    build_parser()  # every area's site section registered, as the command line does
    workspace = open_workspace(SITE)
    selected = {c.id for c in workspace.selection.host_controls}
    controls = roll_up_all(with_missing_controls(workspace, host_runs()))
    on_db1 = {c.control_id: c for c in controls if c.host == "db1"}
    assert set(on_db1) == selected
    assert {(c.outcome, c.reason) for c in on_db1.values()} == {(Outcome.ERROR, UNREACHABLE)}
    assert exit_code_for([c for c in controls if c.host == "db1"], host_runs()) == ExitCode.PARTIAL


def test_exit_code_is_3_for_an_unreachable_host_and_1_when_a_control_failed() -> None:
    hosts = host_runs()
    controls = roll_up_all([r for h in hosts for r in h.results])
    assert exit_code_for(controls, hosts) == ExitCode.FAILED  # web1 failed a control
    passed = [c for c in controls if c.outcome is not Outcome.FAIL]
    assert exit_code_for(passed, hosts) == ExitCode.PARTIAL
    assert exit_code_for([c for c in passed if c.host == "web1"], hosts[:1]) == ExitCode.OK


def test_the_summary_says_an_unreachable_host_once_and_keeps_it_out_of_the_table() -> None:
    hosts = host_runs()
    text = rendered(hosts, [r for h in hosts for r in h.results])
    lines = text.splitlines()
    assert f"db1: {WHY}" in lines  # the whole line, unwrapped
    assert [line for line in lines if "db1" in line and "│" not in line] == [f"db1: {WHY}"]
    assert UNREACHABLE not in text  # no per-control row for db1
    problems = text.split("Controls that did not pass", 1)[1].split(f"db1: {WHY}")[0]
    assert "CG-SSH-003" in problems and "db1" not in problems
    counts = text.split("Controls that did not pass", 1)[0]
    assert "db1" in counts  # still counted: its error results are real


def test_a_long_problem_line_is_not_wrapped() -> None:
    long_why = "unreachable: ssh: " + "x" * 180
    hosts = [HostRun("db1", [], long_why, unreachable=True)]
    assert f"db1: {long_why}" in rendered(hosts, []).splitlines()


def test_json_names_each_host_problem() -> None:
    hosts = host_runs()
    document = json.loads(controls_json(roll_up_all(hosts[1].results), "r1", hosts))
    assert document["host_problems"] == [{"host": "db1", "unreachable": True, "problem": WHY}]
    assert "host_problems" not in json.loads(controls_json([], "r1"))


def test_evidence_show_says_an_unreachable_host_once_too() -> None:
    hosts = host_runs()
    checks = [r for h in hosts for r in h.results]
    started = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    run = RunRecord(
        "r1", "ventspils-example", "check", "ops", started, started, 1, hosts=["web1", "db1"],
        summary={"host_problems": {"db1": WHY}},
    )  # fmt: skip
    out = io.StringIO()
    evidence = RunEvidence(run, roll_up_all(checks), [], [], [], [])
    show_run(Console(file=out, width=100), evidence)
    text = out.getvalue()
    assert f"db1: {WHY}" in text.splitlines()
    assert UNREACHABLE not in text and "CG-SSH-003" in text
