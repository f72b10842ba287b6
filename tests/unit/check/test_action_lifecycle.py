"""A check run that crashes or is interrupted still closes its evidence run.

The crash is simulated (an error path): the run itself is recorded in a real SQLite store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cityguard.check import action
from cityguard.cli.main import build_parser
from cityguard.config import content_root
from cityguard.core.exitcodes import ExitCode
from cityguard.evidence.recorder import INTERRUPTED
from cityguard.workspace import open_workspace

SITE = content_root() / "examples" / "site" / "site.yml"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(RuntimeError("boom"), ExitCode.INTERNAL), (KeyboardInterrupt(), INTERRUPTED)],
)
def test_a_crashed_check_closes_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: BaseException, expected: int
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    build_parser()  # the example site has area sections: register them as the CLI does

    def crash(*_args: object, **_kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(action, "run_checks", crash)
    workspace = open_workspace(SITE)
    with pytest.raises(type(raised)):
        action.check(workspace, progress=False)
    with workspace.open_evidence() as store:
        (run,) = store.list_runs()
    assert run.command == "check"
    assert run.finished_at is not None, "the run was left open"
    assert run.exit_code == expected
