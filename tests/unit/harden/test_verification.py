"""harden checks what it enforced as `check` reads it: which controls per host, the exit code,
each change recorded per item and control, and the lines the operator reads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cityguard.ansible import HostStats, PlaybookRequest, PlaybookResult, TaskResult
from cityguard.cli.main import build_parser
from cityguard.config import content_root
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import Change, CheckResult, ControlResult, Outcome, Subject
from cityguard.harden import action
from cityguard.harden.view import harden_summary
from cityguard.verify.runner import CheckRun, HostRun
from cityguard.workspace import open_workspace

SITE = content_root() / "examples" / "site" / "site.yml"


@pytest.fixture(autouse=True)
def sections() -> None:
    """Every area's site section registered, as the command line does before any command."""
    build_parser()


SYSCTL_TAGS = ["sysctl", "CG-NET-001", "CG-NET-010", "CG-KRN-001"]


def task(host: str, status: str, tags: list[str], **extra: object) -> TaskResult:
    fields: dict[str, object] = {
        "host": host,
        "task": "Apply",
        "role": "sysctl",
        "tags": tags,
        "action": "cityguard_sysctl_runtime",
        "status": status,
    }
    return TaskResult(**{**fields, **extra})  # type: ignore[arg-type]


def test_enforced_controls_are_those_whose_tasks_ran_changed_or_not() -> None:
    tasks = [
        task("web1", "ok", SYSCTL_TAGS),
        task("web1", "skipped", ["ssh", "CG-SSH-001"]),
        task("db1", "changed", ["ssh", "CG-SSH-001", "CG-SSH-099"]),
        task("db1", "ok", ["always"]),
        task("router1", "unreachable", SYSCTL_TAGS),
    ]
    hosts = {"router1": HostStats(unreachable=1)}
    result = PlaybookResult(4, "failed", hosts, tasks, Path("/nonexistent"))
    selected = ["CG-NET-001", "CG-NET-010", "CG-SSH-001"]
    assert action.enforced_controls(result, selected) == {
        "db1": ["CG-SSH-001"],
        "web1": ["CG-NET-001", "CG-NET-010"],
    }


def control(outcome: Outcome, host: str = "web1") -> ControlResult:
    check = CheckResult(
        "test_ssh::test_sshd_refuses_root_login",
        host,
        ("CG-SSH-001",),
        outcome,
        observed="PermitRootLogin (set in /etc/ssh/sshd_config.d/00-a-local.conf:1): yes",
        expected="PermitRootLogin (set in ...): no",
        reason="PermitRootLogin (set in /etc/ssh/sshd_config.d/00-a-local.conf:1): "
        "observed yes, expected no",
    )
    return ControlResult("CG-SSH-001", host, outcome, (check,))


@pytest.mark.parametrize(
    ("playbook", "outcomes", "expected"),
    [
        (ExitCode.OK, [Outcome.PASS], ExitCode.OK),
        (ExitCode.OK, [Outcome.PASS, Outcome.FAIL], ExitCode.FAILED),  # never 0 with a failure
        (ExitCode.PARTIAL, [Outcome.FAIL], ExitCode.FAILED),
        (ExitCode.OK, [Outcome.ERROR], ExitCode.PARTIAL),
        (ExitCode.PARTIAL, [Outcome.PASS], ExitCode.PARTIAL),
        (ExitCode.OK, [Outcome.WAIVED, Outcome.NOT_APPLICABLE], ExitCode.OK),
    ],
)
def test_exit_code_after_verification(
    playbook: ExitCode, outcomes: list[Outcome], expected: ExitCode
) -> None:
    verification = [control(o) for o in outcomes]
    assert action.exit_code_after_verification(playbook, verification) is expected


def test_a_failure_on_a_host_whose_run_failed_keeps_the_run_partial() -> None:
    """A rolled-back change leaves the host as it was: partial (3), its failures reported."""
    failing = [control(Outcome.FAIL, "db1")]
    assert action.exit_code_after_verification(ExitCode.PARTIAL, failing, ["db1"]) is (
        ExitCode.PARTIAL
    )
    both = [*failing, control(Outcome.FAIL, "web1")]
    assert action.exit_code_after_verification(ExitCode.PARTIAL, both, ["db1"]) is ExitCode.FAILED


def test_each_item_of_a_change_is_recorded_against_its_own_control() -> None:
    one = {"before": "k = 1\n", "after": "k = 0\n", "before_header": "runtime"}
    changed = task(
        "web1",
        "changed",
        SYSCTL_TAGS,
        itemized=[
            {"control": "CG-NET-001", "what": "net.ipv4.conf.all.accept_redirects", "diff": one},
            {"control": "CG-NET-010", "what": "net.ipv4.ip_forward", "diff": one},
            {"control": "CG-KRN-001", "what": "kernel.x", "diff": one},  # not selected
        ],
    )
    result = PlaybookResult(0, "successful", {}, [changed], Path("/nonexistent"))
    changes = action.changes_of(result, ["CG-NET-001", "CG-NET-010"])
    assert [(c.control_id, c.description) for c in changes] == [
        ("CG-NET-001", "sysctl : Apply: net.ipv4.conf.all.accept_redirects"),
        ("CG-NET-010", "sysctl : Apply: net.ipv4.ip_forward"),
    ]
    assert all(c.subject == Subject.host("web1") and c.diff and "+k = 0" in c.diff for c in changes)
    assert not any(isinstance(c, Change) and c.control_id == "CG-KRN-001" for c in changes)


def test_a_real_run_verifies_and_exits_1_naming_control_value_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The playbook succeeds but the check still fails: exit 1, the failing control, the
    observed value and the overriding file on screen and in the evidence."""
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    tasks = [task("web1", "ok", ["ssh", "CG-SSH-001"])]

    def run_playbook(request: PlaybookRequest, on_event: object = None) -> PlaybookResult:
        artifacts = request.run_dir / "artifacts" / "x"
        artifacts.mkdir(parents=True)
        return PlaybookResult(0, "successful", {"web1": HostStats(ok=1)}, tasks, artifacts)

    asked: list[CheckRun] = []

    def run_checks(run: CheckRun) -> list[HostRun]:
        asked.append(run)
        return [HostRun("web1", list(control(Outcome.FAIL).checks))]

    monkeypatch.setattr(action, "run_playbook", run_playbook)
    monkeypatch.setattr("cityguard.verify.run_checks", run_checks)
    workspace = open_workspace(SITE)
    outcome = action.harden(workspace, limit="web1", progress=False)
    assert outcome.exit_code is ExitCode.FAILED
    assert asked[0].hosts == ["web1"] and asked[0].controls == ["CG-SSH-001"]
    assert [c.control_id for c in outcome.still_failing] == ["CG-SSH-001"]
    with workspace.open_evidence() as store:
        run = store.get_run(outcome.run_id)
        assert run.exit_code == 1
        assert run.summary["still_failing"][0]["control"] == "CG-SSH-001"
        assert "00-a-local.conf" in run.summary["still_failing"][0]["observed"]
    out = io.StringIO()
    harden_summary(Console(file=out, width=250), outcome)
    line = next(ln for ln in out.getvalue().splitlines() if "still fails" in ln)
    assert "web1 CG-SSH-001" in line and "observed yes" in line and "00-a-local.conf" in line


def test_check_mode_verifies_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))

    def run_playbook(request: PlaybookRequest, on_event: object = None) -> PlaybookResult:
        artifacts = request.run_dir / "artifacts" / "x"
        artifacts.mkdir(parents=True)
        tasks = [task("web1", "changed", ["ssh", "CG-SSH-001"])]
        return PlaybookResult(0, "successful", {"web1": HostStats(ok=1)}, tasks, artifacts)

    def run_checks(run: CheckRun) -> list[HostRun]:
        raise AssertionError("check mode changed nothing: there is nothing to verify")

    monkeypatch.setattr(action, "run_playbook", run_playbook)
    monkeypatch.setattr("cityguard.verify.run_checks", run_checks)
    outcome = action.harden(open_workspace(SITE), check=True, progress=False)
    assert outcome.exit_code is ExitCode.OK and outcome.verification == ()
