"""What a harden run leaves in the evidence: Change records per task and control, counts and
failures in the summary, the run directory's files; and `evidence show` renders all of it."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from cityguard.ansible import HostStats, PlaybookRequest, PlaybookResult, TaskResult
from cityguard.cli import evidence as evidence_cli
from cityguard.config import content_root
from cityguard.core.context import Context
from cityguard.core.records import Change, Subject
from cityguard.harden import action
from cityguard.workspace import open_workspace

SITE = content_root() / "examples" / "site" / "site.yml"
DIFF = {"before": "a\nb\n", "after": "a\nc\n", "before_header": "/etc/x", "after_header": "/etc/x"}


def task(host: str, name: str, status: str = "changed", **extra: object) -> TaskResult:
    fields: dict[str, object] = {
        "host": host,
        "task": name,
        "role": "ssh",
        "tags": ["ssh", "CG-SSH-001", "CG-SSH-015"],
        "action": "ansible.builtin.template",
        "status": status,
    }
    return TaskResult(**{**fields, **extra})  # type: ignore[arg-type]


TASKS = [
    task("web1", "Write the cityguard sshd drop-in", diff=[DIFF, {"prepared": "+ line"}]),
    task("web1", "Unchanged task", status="ok"),
    task("db1", "Set MaxAuthTries", changed_controls=["CG-SSH-015", "CG-SSH-001"]),
    task("db1", "restart sshd", role=None, tags=["handler"]),
    task("db1", "Broken task", status="failed", message="permission denied"),
]


def result(artifacts_dir: Path) -> PlaybookResult:
    hosts = {"web1": HostStats(ok=2, changed=1), "db1": HostStats(ok=2, changed=2, failed=1)}
    return PlaybookResult(2, "failed", hosts, TASKS, artifacts_dir)


def test_changes_are_one_per_task_and_selected_control(tmp_path: Path) -> None:
    changes = action.changes_of(result(tmp_path), ["CG-SSH-001", "CG-SSH-002"])
    web1, db1 = Subject.host("web1"), Subject.host("db1")
    diff = "--- /etc/x\n+++ /etc/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n+ line"
    assert changes == [
        Change(web1, "CG-SSH-001", "ssh : Write the cityguard sshd drop-in", diff),
        Change(db1, "CG-SSH-001", "ssh : Set MaxAuthTries"),
        Change(db1, None, "restart sshd"),  # served no selected control: kept anyway
    ]
    both = action.changes_of(result(tmp_path), ["CG-SSH-001", "CG-SSH-015"])
    assert [(c.subject.name, c.control_id) for c in both] == [
        ("web1", "CG-SSH-001"),
        ("web1", "CG-SSH-015"),
        ("db1", "CG-SSH-015"),
        ("db1", "CG-SSH-001"),
        ("db1", None),
    ]


def test_the_summary_keeps_counts_and_failures_but_no_changes(tmp_path: Path) -> None:
    summary = action.summarize(result(tmp_path), ["CG-SSH-001"])
    assert "changes" not in summary
    assert summary["hosts"] == {
        "web1": {"ok": 2, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 0},
        "db1": {"ok": 2, "changed": 2, "failed": 1, "unreachable": 0, "skipped": 0},
    }
    assert summary["failures"] == [
        {
            "host": "db1",
            "task": "Broken task",
            "role": "ssh",
            "status": "failed",
            "controls": ["CG-SSH-001"],
            "message": "permission denied",
            "ignored": False,
        }
    ]


def test_a_harden_run_records_changes_and_files_and_shows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))

    def run_playbook(request: PlaybookRequest, on_event: object = None) -> PlaybookResult:
        artifacts = request.run_dir / "artifacts" / "20250314T092653Z-1a2b3c4d"
        artifacts.mkdir(parents=True)
        (artifacts / "stdout").write_text("PLAY RECAP\n")
        (artifacts / "rc").write_text("2")
        return result(artifacts)

    monkeypatch.setattr(action, "run_playbook", run_playbook)
    workspace = open_workspace(SITE)
    outcome = action.harden(workspace, check=True, progress=False)
    selected = workspace.selection.for_hosts()
    with workspace.open_evidence() as store:
        run = store.get_run(outcome.run_id)
        changes = store.changes(run.id)
        artifacts = {a.path: a for a in store.artifacts(run.id)}
    assert run.command == "harden --check" and run.exit_code == 3
    assert run.baseline == workspace.selection.baseline
    assert run.parameters == workspace.selection.parameters
    assert changes == action.changes_of(result(tmp_path), selected.control_ids)
    assert "failures" in run.summary and "changes" not in run.summary
    assert set(artifacts) == {
        "inventory.yml",
        "artifacts/20250314T092653Z-1a2b3c4d/stdout",
        "artifacts/20250314T092653Z-1a2b3c4d/rc",
    }
    assert artifacts["inventory.yml"].media_type == "application/yaml"

    out = io.StringIO()
    ctx = Context(_out=Console(file=out, width=250))
    args = argparse.Namespace(site=SITE, run_id=run.id, format="table", diff=True)
    assert evidence_cli.run_show(args, ctx) == 0
    shown = out.getvalue()
    assert "harden --check" in shown and run.baseline is not None and run.baseline in shown
    assert "ssh : Write the cityguard sshd drop-in" in shown
    assert "restart sshd" in shown and "(no control)" in shown
    assert "+c" in shown  # --diff prints the diff
    assert "artifacts/20250314T092653Z-1a2b3c4d/stdout" in shown
    assert artifacts["inventory.yml"].sha256[:16] in shown

    capsys.readouterr()
    evidence_cli.run_show(argparse.Namespace(site=SITE, run_id=run.id, format="json"), ctx)
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"run", "controls", "steps", "measurements", "changes", "artifacts"}
    assert document["run"]["id"] == run.id and document["run"]["baseline"] == run.baseline
    assert document["changes"][0]["diff"].endswith("+ line")
    assert document["changes"][0]["subject"] == {"kind": "host", "name": "web1"}
    assert {a["path"] for a in document["artifacts"]} == set(artifacts)
