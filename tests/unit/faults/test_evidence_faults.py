"""Evidence under faults: private files, a store that lost its runs, a store that stops writing,
and two runs on one site at once."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cityguard.core.exitcodes import ExitCode
from cityguard.core.sitelock import LOCK_FILE, SiteBusy, site_lock
from cityguard.evidence import EvidenceError, SqliteStore
from cityguard.evidence.model import new_run
from cityguard.evidence.recorder import record_run
from faults.sites import cityguard, make_site


def one_run(path: Path) -> str:
    with SqliteStore(path) as store:
        run = new_run("faults", "check", ["web1"])
        store.start_run(run)
        store.finish_run(run.id, 0, None)
    return run.id


def test_the_store_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    one_run(state / "evidence.sqlite")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in os.listdir(state):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


def test_an_existing_readable_store_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "evidence.sqlite"
    one_run(path)
    path.chmod(0o644)
    one_run(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("damage", ["truncate", "delete", "replace"])
def test_a_store_that_lost_its_runs_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "evidence.sqlite"
    one_run(path)
    if damage == "truncate":
        path.write_bytes(b"")
        what = "is empty (0 bytes)"
    elif damage == "delete":
        path.unlink()
        what = "is missing"
    else:
        path.unlink()
        (tmp_path / "evidence.sqlite.history").rename(tmp_path / "kept")
        SqliteStore(path).close()  # an empty store put in its place
        (tmp_path / "kept").rename(tmp_path / "evidence.sqlite.history")
        what = "holds no run"
    with pytest.raises(EvidenceError) as caught:
        SqliteStore(path)
    assert f"{path} {what}, but it has held runs since " in str(caught.value)
    assert "restore it from a backup" in str(caught.value)
    assert path.exists() is (damage != "delete"), "nothing was re-created"
    if damage != "replace":
        assert path.stat().st_size == 0 if damage == "truncate" else True


def test_a_new_store_starts_without_complaint(tmp_path: Path) -> None:
    path = tmp_path / "evidence.sqlite"
    SqliteStore(path).close()  # opened, no run yet: no marker, reopening is fine
    SqliteStore(path).close()
    assert not (tmp_path / "evidence.sqlite.history").exists()


def test_an_unreadable_store_is_an_error_not_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "evidence.sqlite"
    one_run(path)
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(EvidenceError, match="file is not a database"):
        SqliteStore(path)


def test_a_run_whose_store_stops_writing_says_it_stays_open(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "evidence.sqlite")
    run = new_run("faults", "harden", ["web1"])

    def broken(*_: Any, **__: Any) -> None:
        raise EvidenceError("evidence store x: attempt to write a readonly database")

    with pytest.raises(EvidenceError) as caught, record_run(store, run) as recorder:
        store.finish_run = broken  # type: ignore[method-assign]
        store.add_changes = broken  # type: ignore[method-assign]
        recorder.add_changes([])
    message = str(caught.value)
    assert message.startswith("evidence store x: attempt to write a readonly database; then ")
    assert f"evidence run {run.id} could not be closed and stays open" in message
    assert recorder.closed_with is None


def test_a_run_that_could_record_nothing_more_is_still_closed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "evidence.sqlite")
    run = new_run("faults", "harden", ["web1"])

    def broken(*_: Any, **__: Any) -> None:
        raise EvidenceError("evidence store x: database or disk is full")

    with pytest.raises(EvidenceError), record_run(store, run) as recorder:
        store.add_changes = broken  # type: ignore[method-assign]
        recorder.add_changes([])
    assert recorder.closed_with == int(ExitCode.PARTIAL)
    assert store.get_run(run.id).exit_code == int(ExitCode.PARTIAL)


def test_the_site_lock_names_its_holder(tmp_path: Path) -> None:
    with site_lock(tmp_path, "faults", "harden"):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "harden"
        with pytest.raises(SiteBusy) as caught, site_lock(tmp_path, "faults", "check"):
            pass
    message = caught.value.lines()[0]
    assert message.startswith(f"error: site faults is busy: 'harden' (pid {os.getpid()}, user ")
    assert f"holds {tmp_path / LOCK_FILE}" in message
    with site_lock(tmp_path, "faults", "check"):  # released when the holder ended
        pass


@pytest.mark.parametrize("command", [["check"], ["harden", "--check"], ["harden"]])
def test_a_second_run_on_a_busy_site_is_refused(tmp_path: Path, command: list[str]) -> None:
    make_site(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    fd = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = {"pid": 4242, "user": "ops", "command": "harden", "since": "2026-05-04T10:00:00"}
        os.write(fd, json.dumps(info).encode())
        result = cityguard(*command, "--site", "site.yml", state=state, cwd=tmp_path)
    finally:
        os.close(fd)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: site faults is busy: 'harden' (pid 4242, user ops, since 2026-05-04T10:00:00) "
        f"holds {state / LOCK_FILE}; wait for it to end, then run "
        f"'{' '.join(command)}' again"
    ]
    assert not (state / "runs").exists() and not (state / "evidence.sqlite").exists()
