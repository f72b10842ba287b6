"""Run records: timezone discipline and what new_run fills in for the auditor."""

from __future__ import annotations

import getpass
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from cityguard.evidence import RunRecord, content_commit, model, new_run, tool_versions


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "content"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "site.yml").write_text("hosts: all\n")
    _git(repo, "add", "site.yml")
    _git(repo, "commit", "-q", "-m", "content")
    return repo


def test_naive_times_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RunRecord("r", "s", "check", "alice", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        RunRecord("r", "s", "check", "alice", datetime.now(UTC), finished_at=datetime(2025, 1, 1))


def test_clean_checkout_commit(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD").strip()
    assert re.fullmatch(r"[0-9a-f]{40}", head)
    assert content_commit(repo) == head


def test_dirty_checkout_is_flagged(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "site.yml").write_text("hosts: web\n")
    assert content_commit(repo) == head + "-dirty"


def test_untracked_file_makes_checkout_dirty(repo: Path) -> None:
    (repo / "new-playbook.yml").write_text("- hosts: all\n")
    assert content_commit(repo) == _git(repo, "rev-parse", "HEAD").strip() + "-dirty"


def test_not_a_checkout(tmp_path: Path) -> None:
    assert content_commit(tmp_path) is None


def test_tool_versions_skip_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        model, "TRACKED_DISTRIBUTIONS", ("cityguard", "no-such-distribution-xyz", "ansible-core")
    )
    versions = tool_versions()
    assert versions["cityguard"] == metadata.version("cityguard")
    assert versions["ansible-core"] == metadata.version("ansible-core")
    assert "no-such-distribution-xyz" not in versions
    assert set(versions) == {"cityguard", "ansible-core", "python"}


def test_new_run_fills_in_the_facts(repo: Path) -> None:
    before = datetime.now(UTC)
    run = new_run("musterstadt", "harden --check", ("web1", "db1"), content_dir=repo,
                  artifacts_dir=repo / "artifacts")  # fmt: skip
    after = datetime.now(UTC)
    assert re.fullmatch(r"[0-9a-f]{32}", run.id)
    assert run.id != new_run("musterstadt", "check", []).id
    assert run.site == "musterstadt"
    assert run.command == "harden --check"
    assert run.operator == getpass.getuser()
    assert before <= run.started_at <= after
    assert run.started_at.utcoffset() is not None
    assert run.finished_at is None and run.exit_code is None
    assert run.content_commit == _git(repo, "rev-parse", "HEAD").strip()
    assert run.tool_versions["cityguard"] == metadata.version("cityguard")
    assert run.tool_versions["pytest-testinfra"] == metadata.version("pytest-testinfra")
    assert run.hosts == ["web1", "db1"]
    assert run.artifacts_dir == str(repo / "artifacts")
    assert run.summary == {}


def test_new_run_without_content_dir_has_no_commit() -> None:
    assert new_run("musterstadt", "check", ["web1"]).content_commit is None
