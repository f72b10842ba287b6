"""Faults on a real restic 0.19.1 repository on this machine (no lab host needed): kill -9 in
the middle of a backup leaves a stale lock that the next run removes; a corrupted pack file is
found by the drill's check; a deleted newest backup set makes the drill use an older one (an
RPO breach); a wrong password and a missing repository are typed errors."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from restic_locks import lock_files

from cityguard.config.paths import cache_dir
from cityguard.core.secrets import SecretRef
from cityguard.drill import restic
from cityguard.drill.action import _restic_check, latest_set
from cityguard.drill.manifest import Manifest, manifest_path
from cityguard.drill.runner import Restic

pytestmark = pytest.mark.integration

BINARY = restic.restic_binary(cache_dir())
PASSWORD = "faults-pw-91b2"


class FakePlan:
    system = "portal"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Restic:
    if not BINARY.exists():
        pytest.fail("restic is not built: run tools/components/restic.sh")
    monkeypatch.setenv("CG_FAULTS_PASSWORD", PASSWORD)
    found = Restic(
        restic.Repo(str(tmp_path / "repo"), str(BINARY)), SecretRef.env("CG_FAULTS_PASSWORD")
    )
    found.run(restic.init_args(), "init", timeout=60)
    return found


def backup_set(repo: Restic, set_id: str, data: str) -> None:
    tags = restic.snapshot_tags("portal", set_id, "db")
    args = restic.backup_stdin_args("/cityguard/portal/db.pgdump", tags=tags, host="db1")
    repo.run(args, "backup", input_text=data)
    manifest = Manifest("portal", set_id, "now", {})
    tags = restic.snapshot_tags("portal", set_id, restic.MANIFEST_PART)
    args = restic.backup_stdin_args(manifest_path("portal"), tags=tags, host="portal")
    repo.run(args, "manifest", input_text=manifest.to_json())


def test_kill_9_during_backup_then_the_next_backup_succeeds(repo: Restic, tmp_path: Path) -> None:
    argv = [
        *repo.repo.base(),
        *restic.backup_from_command_args(
            "/x", ("sleep", "60"), tags=("cg-system=portal",), host="db1"
        ),
    ]
    process = subprocess.Popen(
        argv,
        env={**os.environ, "RESTIC_PASSWORD": PASSWORD},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    locks = tmp_path / "repo" / "locks"
    try:
        deadline = time.monotonic() + 20
        while not lock_files(locks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lock_files(locks), "restic took no lock"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert lock_files(locks)  # the dead process's lock is still there
    repo.run(restic.unlock_args(), "removing stale locks", timeout=60)
    assert not lock_files(locks)
    backup_set(repo, "s1", "after the crash")
    assert latest_set(repo, FakePlan(), tmp_path) is not None  # type: ignore[arg-type]


def test_corrupted_pack_fails_the_check_with_a_finding(repo: Restic, tmp_path: Path) -> None:
    backup_set(repo, "s1", "x" * 200_000)
    packs = sorted((tmp_path / "repo" / "data").rglob("*"))
    pack = max((p for p in packs if p.is_file()), key=lambda p: p.stat().st_size)
    content = bytearray(pack.read_bytes())
    content[100:120] = b"\0" * 20
    pack.chmod(0o600)
    pack.write_bytes(bytes(content))
    summary = _restic_check(repo, "100%")
    assert not summary.ok
    assert summary.messages or summary.broken_packs


def test_deleted_newest_set_falls_back_to_the_older_one(repo: Restic, tmp_path: Path) -> None:
    backup_set(repo, "old", "a")
    time.sleep(1.1)
    backup_set(repo, "new", "b")
    assert latest_set(repo, FakePlan(), tmp_path).set_id == "new"  # type: ignore[arg-type, union-attr]
    newest = [s for s in repo.snapshots(["cg-set=new"])]
    repo.run(("forget", *[s.id for s in newest]), "forgetting", timeout=60)
    found = latest_set(repo, FakePlan(), tmp_path)  # type: ignore[arg-type]
    assert found is not None and found.set_id == "old"


def test_wrong_password_and_missing_repository_are_typed(
    repo: Restic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CG_FAULTS_PASSWORD", "wrong-one")
    with pytest.raises(restic.WrongPassword) as wrong:
        repo.snapshots([])
    assert "wrong-one" not in str(wrong.value)
    missing = Restic(restic.Repo(str(tmp_path / "nothing"), str(BINARY)), repo.password)
    assert missing.exists() is False
