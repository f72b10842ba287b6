"""A hardening run whose evidence store turns read-only after the hosts were changed still says
what it changed, that the evidence is incomplete, and whether the run could be closed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cityguard.ansible import HostStats, PlaybookRequest, PlaybookResult, TaskResult
from cityguard.core.exitcodes import ExitCode
from cityguard.evidence import EvidenceError, SqliteStore
from cityguard.harden import action
from cityguard.harden.view import harden_summary
from cityguard.workspace import open_workspace
from faults.sites import make_site


def changed_everything(request: PlaybookRequest, on_event: Any = None) -> PlaybookResult:
    task = TaskResult(
        host="web1",
        task="Write the cityguard sshd drop-in",
        role="ssh",
        tags=["ssh", "CG-SSH-001"],
        action="ansible.builtin.template",
        status="changed",
    )
    hosts = {"web1": HostStats(ok=3, changed=1), "db1": HostStats(ok=3)}
    return PlaybookResult(0, "successful", hosts, [task], request.run_dir)


@pytest.mark.parametrize("close_works", [True, False])
def test_read_only_store_during_harden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, close_works: bool
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    workspace = open_workspace(make_site(tmp_path))
    monkeypatch.setattr(action, "run_playbook", changed_everything)

    def read_only(*_: Any, **__: Any) -> None:
        raise EvidenceError("evidence store x: attempt to write a readonly database")

    monkeypatch.setattr(SqliteStore, "add_changes", read_only)
    if not close_works:
        monkeypatch.setattr(SqliteStore, "finish_run", read_only)
    outcome = action.harden(workspace, progress=False)
    assert outcome.exit_code == ExitCode.PARTIAL
    assert outcome.result.changed_total == 1
    assert outcome.evidence_problem is not None
    out = io.StringIO()
    harden_summary(Console(file=out, width=300), outcome)
    text = out.getvalue()
    assert "web1 CG-SSH-001: changed: Write the cityguard sshd drop-in" in text
    assert f"evidence run {outcome.run_id}: NOT fully recorded: evidence store x: attempt" in text
    if close_works:
        assert "the run was closed with exit code 3" in text
    else:
        assert "could not be closed and stays open in the store" in text
