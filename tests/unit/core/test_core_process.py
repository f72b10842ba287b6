"""The engine's one subprocess runner: argv lists, one-line typed errors, secrets redacted."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityguard.core.errors import CityguardError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.process import Completed, ProcessError, run
from cityguard.core.secrets import REDACTED, forget_secrets, register_secret

PY = sys.executable


@pytest.fixture(autouse=True)
def _empty_registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def py(code: str) -> list[str]:
    return [PY, "-c", code]


def test_success_returns_output() -> None:
    result = run(
        py("import sys; print('out'); print('err', file=sys.stderr)"), what="t", timeout=30
    )
    assert isinstance(result, Completed)
    assert result.ok and result.returncode == 0
    assert result.stdout == "out\n" and result.stderr == "err\n"
    assert result.argv[0] == PY


def test_a_failing_command_is_one_line_with_the_last_stderr_line() -> None:
    code = "import sys; print('first', file=sys.stderr); print('last words', file=sys.stderr); " + (
        "sys.exit(3)"
    )
    with pytest.raises(ProcessError) as caught:
        run(py(code), what="doing the thing", timeout=30)
    error = caught.value
    assert isinstance(error, CityguardError)
    assert error.exit_code is ExitCode.PARTIAL
    assert str(error) == "doing the thing: last words"
    assert error.lines() == ["error: doing the thing: last words"]
    assert error.what == "doing the thing"
    assert error.returncode == 3
    assert error.failure == "failed"
    assert error.output_tail == ("first", "last words")


def test_a_silent_failure_names_the_exit_code() -> None:
    with pytest.raises(ProcessError) as caught:
        run(py("raise SystemExit(4)"), what="quiet step", timeout=30)
    assert str(caught.value) == "quiet step: exit code 4"


def test_stdout_is_used_when_stderr_is_empty() -> None:
    with pytest.raises(ProcessError) as caught:
        run(py("print('said on stdout'); raise SystemExit(1)"), what="step", timeout=30)
    assert str(caught.value) == "step: said on stdout"


def test_the_tail_keeps_the_last_lines_only() -> None:
    code = "import sys\nfor i in range(20): print(i, file=sys.stderr)\nsys.exit(1)"
    with pytest.raises(ProcessError) as caught:
        run(py(code), what="step", timeout=30)
    assert caught.value.output_tail == ("15", "16", "17", "18", "19")


def test_check_false_returns_the_failure() -> None:
    result = run(py("raise SystemExit(2)"), what="step", timeout=30, check=False)
    assert result.returncode == 2 and not result.ok


def test_a_timeout_is_a_process_error() -> None:
    code = "import sys, time; print('started', file=sys.stderr, flush=True); time.sleep(30)"
    with pytest.raises(ProcessError) as caught:
        run(py(code), what="slow step", timeout=1, check=False)
    error = caught.value
    assert str(error) == "slow step: timed out after 1 s"
    assert error.failure == "timed-out"
    assert error.returncode is None


def test_a_timeout_ends_the_programs_children_too() -> None:
    """A child that keeps the output open (ssh under pytest) must not make the wait endless."""
    started = time.monotonic()
    with pytest.raises(ProcessError):
        run(["sh", "-c", "sleep 3607 & echo $!; wait"], what="stuck step", timeout=1)
    assert time.monotonic() - started < 10
    leftover = run(["pgrep", "-f", "^sleep 3607$"], what="looking", timeout=5, check=False)
    assert leftover.stdout == ""


def test_a_missing_program_is_one_line() -> None:
    with pytest.raises(ProcessError) as caught:
        run(["cityguard-no-such-program", "--x"], what="listing things", timeout=5)
    assert str(caught.value) == "listing things: command not found: cityguard-no-such-program"
    assert caught.value.failure == "not-found"
    assert caught.value.returncode is None


def test_a_missing_working_directory_is_not_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(ProcessError) as caught:
        run([PY, "-c", "pass"], what="step", timeout=5, cwd=tmp_path / "gone")
    assert caught.value.failure == "cannot-start"
    assert str(caught.value).startswith(f"step: working directory {tmp_path / 'gone'}: ")


def test_a_program_that_cannot_be_executed(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ProcessError) as caught:
        run([str(script)], what="step", timeout=5)
    assert caught.value.failure == "cannot-start"
    assert str(caught.value) == f"step: cannot run {script}: Permission denied"


def test_secrets_are_redacted_from_the_error_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("hunter2-secret")
    code = "import sys; print('login failed for hunter2-secret', file=sys.stderr); sys.exit(1)"
    caplog.set_level(logging.DEBUG, logger="cityguard.core.process")
    with pytest.raises(ProcessError) as caught:
        run([*py(code), "--password=hunter2-secret"], what="login hunter2-secret", timeout=30)
    error = caught.value
    assert str(error) == f"login {REDACTED}: login failed for {REDACTED}"
    assert error.output_tail == (f"login failed for {REDACTED}",)
    assert error.argv[-1] == f"--password={REDACTED}"
    assert caplog.text  # something was logged ...
    assert "hunter2-secret" not in caplog.text  # ... and no secret


def test_a_timeout_message_is_redacted_too() -> None:
    register_secret("s3cret-in-step")
    with pytest.raises(ProcessError) as caught:
        run(py("import time; time.sleep(30)"), what="step s3cret-in-step", timeout=0.5)
    assert "s3cret-in-step" not in str(caught.value)


def test_input_env_and_cwd(tmp_path: Path) -> None:
    code = "import os, sys; print(sys.stdin.read().upper(), os.environ['CG_X'], os.getcwd())"
    result = run(py(code), what="t", timeout=30, input_text="abc", env={"CG_X": "1"}, cwd=tmp_path)
    assert result.stdout.split() == ["ABC", "1", str(tmp_path)]


def test_stdin_is_empty_without_input() -> None:
    # a program never waits on the operator's terminal
    result = run(py("import sys; print(repr(sys.stdin.read()))"), what="t", timeout=30)
    assert result.stdout.strip() == "''"


def test_env_adds_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CG_INHERITED", "kept")
    code = "import os; print(os.environ['CG_INHERITED'], os.environ['CG_ADDED'])"
    result = run(py(code), what="t", timeout=30, env={"CG_ADDED": "new"})
    assert result.stdout.split() == ["kept", "new"]


def test_undecodable_output_does_not_crash() -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok \\xff\\n')"
    assert run(py(code), what="t", timeout=30).stdout.startswith("ok ")


def test_argv_must_be_a_list() -> None:
    with pytest.raises(TypeError):
        run("echo hello", what="t", timeout=5)
    with pytest.raises(ValueError):
        run([], what="t", timeout=5)
