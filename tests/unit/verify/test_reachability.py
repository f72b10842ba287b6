"""An unreachable host is one line saying why: detection, trimming, redaction, and a real run.

The last test runs the check plugin as `cityguard check` does (a pytest subprocess per host)
against a host whose SSH port is closed, so the SSH error is real; no lab host is needed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from testinfra.backend.base import CommandResult

from cityguard.core.records import CheckResult, Outcome
from cityguard.core.secrets import forget_secrets, register_secret
from cityguard.verify.reachability import (
    MARK,
    MAX_WHY,
    UNREACHABLE,
    HostUnreachable,
    last_ssh_error,
    one_line,
    ssh_failure,
    unreachable_why,
)
from cityguard.verify.runner import CheckRun, HostRun, run_checks, summarise

REFUSED = "ssh: connect to host 192.0.2.7 port 22: Connection refused"


@pytest.fixture
def secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def errored(host: str, reason: str, *controls: str) -> list[CheckResult]:
    return [
        CheckResult(f"test_x::test_{i}", host, (c,), Outcome.ERROR, observed="x", reason=reason)
        for i, c in enumerate(controls)
    ]


def test_the_last_error_line_is_kept_and_ssh_noise_dropped() -> None:
    stderr = (
        "Warning: Permanently added '192.0.2.7' (ED25519) to the list of known hosts.\r\n"
        "debug1: Connecting to 192.0.2.7 port 22.\n"
        "** WARNING: connection is not using a post-quantum key exchange algorithm.\n"
        f"   {REFUSED}   \n\n"
    )
    assert last_ssh_error(stderr) == REFUSED


def test_an_ssh_error_is_trimmed_to_one_short_line() -> None:
    why = last_ssh_error("kex_exchange_identification: " + "x" * 1000)
    assert "\n" not in why and len(why) == MAX_WHY and why.endswith("…")
    assert one_line("a\n  b\tc ") == "a b c"
    assert last_ssh_error("debug1: only noise\n\n") == "ssh failed and said nothing"


def test_only_ssh_exit_255_is_unreachable() -> None:
    stderr = f"Warning: Permanently added 'h'.\n{REFUSED}\n"  # as the backend decodes it
    failed = CommandResult(None, 255, b"sudo sh -c '...'", b"", stderr)  # type: ignore[arg-type]
    unreachable = ssh_failure(RuntimeError(failed))
    assert isinstance(unreachable, HostUnreachable)
    assert str(unreachable) == f"{MARK}{REFUSED}"
    remote = CommandResult(None, 1, b"sudo sh -c '...'", b"", b"sudo: no tty")  # type: ignore[arg-type]
    assert ssh_failure(RuntimeError(remote)) is None
    assert ssh_failure(RuntimeError("Unknown connection type 'winrm'")) is None
    assert ssh_failure(RuntimeError()) is None


def test_why_is_read_from_the_checks_and_redacted(secrets: None) -> None:
    register_secret("s3cr3t-token")
    reason = f"cityguard.verify.reachability.HostUnreachable: {MARK}proxy s3cr3t-token: refused"
    assert unreachable_why(errored("h", reason, "CG-A-001")) == "proxy (redacted): refused"
    assert unreachable_why(errored("h", "RuntimeError: sudo: no tty", "CG-A-001")) is None
    reached = [CheckResult("t::a", "h", ("CG-A-001",), Outcome.FAIL, reason=f"{MARK}in a fail")]
    assert unreachable_why(reached) is None


def test_an_unreachable_host_is_summarised_once(secrets: None) -> None:
    register_secret("hunter2")
    reason = f"HostUnreachable: {MARK}Permission denied for hunter2 (publickey)."
    run = summarise(HostRun("web1", errored("web1", reason, "CG-A-001", "CG-B-002")))
    assert run.unreachable
    assert run.problem == "unreachable: Permission denied for (redacted) (publickey)."
    assert [(r.outcome, r.reason, r.observed) for r in run.results] == [
        (Outcome.ERROR, UNREACHABLE, None),
        (Outcome.ERROR, UNREACHABLE, None),
    ]


def test_other_host_problems_stay_one_redacted_line(secrets: None) -> None:
    register_secret("hunter2")
    same = summarise(HostRun("db1", errored("db1", "sudo: hunter2\nwrong", "CG-A-001")))
    assert not same.unreachable and same.problem == "sudo: (redacted) wrong"
    broken = summarise(HostRun("db1", [], "check run failed (pytest rc=4): a\nb"))
    assert not broken.unreachable and broken.problem == "check run failed (pytest rc=4): a b"
    fine = [CheckResult("t::a", "db1", ("CG-A-001",), Outcome.PASS)]
    assert summarise(HostRun("db1", fine)).problem is None


FACT_CHECKS = textwrap.dedent(
    """\
    import pytest


    @pytest.mark.controls("CG-TST-001")
    def test_uses_facts(facts, expect):
        expect.equal(facts.container, None, "container")


    @pytest.mark.controls("CG-TST-002")
    def test_uses_facts_too(facts, expect):
        expect.equal(facts.container, None, "container")
    """
)


def test_a_closed_ssh_port_gives_one_line_for_the_host(tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "test_facts_sample.py").write_text(FACT_CHECKS)
    inventory = tmp_path / "inventory.yml"
    closed = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody"}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"gone1": closed}}}))
    run = CheckRun(checks, inventory, ["gone1"], ["CG-TST-001", "CG-TST-002"])

    (host_run,) = run_checks(run)

    assert host_run.unreachable
    refused = "ssh: connect to host 127.0.0.1 port 1: Connection refused"
    assert host_run.problem == f"unreachable: {refused}"
    assert {(r.check_id, r.outcome, r.reason) for r in host_run.results} == {
        ("test_facts_sample::test_uses_facts", Outcome.ERROR, UNREACHABLE),
        ("test_facts_sample::test_uses_facts_too", Outcome.ERROR, UNREACHABLE),
    }


STUCK_CHECK = textwrap.dedent(
    """\
    import os
    import subprocess
    import pytest


    @pytest.mark.controls("CG-TST-001")
    def test_done_quickly(expect):
        expect.equal(1, 1, "one")


    @pytest.mark.controls("CG-TST-002")
    def test_never_answers(expect):
        # a child of the check, as ssh is: it must end with the check's process group
        child = subprocess.Popen(["sleep", "300"])
        with open(os.environ["STUCK_PID_FILE"], "w") as out:
            out.write(str(child.pid))
        child.wait()
    """
)


def test_a_host_that_stops_answering_is_stopped_at_the_host_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "test_stuck_sample.py").write_text(STUCK_CHECK)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"frozen1": {}}}}))
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("STUCK_PID_FILE", str(pid_file))
    run = CheckRun(checks, inventory, ["frozen1"], ["CG-TST-001", "CG-TST-002"], host_timeout_s=4)

    (host_run,) = run_checks(run)

    assert host_run.problem is not None
    assert host_run.problem.startswith("check did not finish within 4 s"), host_run.problem
    assert "1 checks had finished" in host_run.problem
    assert [r.check_id for r in host_run.results] == ["test_stuck_sample::test_done_quickly"]
    assert not alive(int(pid_file.read_text()))


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for whoever adopted it to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status
