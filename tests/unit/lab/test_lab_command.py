"""The lab's commands go through the engine's runner and fail as LabError, one line each."""

from __future__ import annotations

import sys

import pytest

from cityguard.core.process import ProcessError
from cityguard.lab.command import LabError, run


def test_output_is_returned() -> None:
    assert run([sys.executable, "-c", "print('hi')"], what="saying hi") == "hi\n"


def test_input_and_env() -> None:
    code = "import os, sys; print(sys.stdin.read(), os.environ['CG_LAB'])"
    assert run([sys.executable, "-c", code], what="t", input_text="in", env={"CG_LAB": "x"}) == (
        "in x\n"
    )


def test_a_failure_is_a_lab_error_naming_the_step() -> None:
    code = "import sys; print('RTNETLINK answers: File exists', file=sys.stderr); sys.exit(2)"
    with pytest.raises(LabError) as caught:
        run([sys.executable, "-c", code], what="creating bridge cg-br0")
    assert str(caught.value) == "creating bridge cg-br0: RTNETLINK answers: File exists"
    assert isinstance(caught.value.__cause__, ProcessError)
    assert caught.value.__cause__.returncode == 2


def test_a_silent_failure_names_the_exit_code() -> None:
    with pytest.raises(LabError, match=r"^step: exit code 5$"):
        run([sys.executable, "-c", "raise SystemExit(5)"], what="step")


def test_a_missing_command() -> None:
    with pytest.raises(LabError, match=r"^mounting: command not found: cg-no-such-mount$"):
        run(["cg-no-such-mount"], what="mounting")
