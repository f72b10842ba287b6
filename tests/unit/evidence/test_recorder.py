"""The recorder closes every run with the code that describes how it ended, records the run
directory's files (also after a crash), times steps, and keeps no foreign exception's text."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing, nullcontext
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from cityguard.core.errors import CityguardError, UsageError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import (
    Change,
    Comparison,
    Measurement,
    Outcome,
    Subject,
    SubjectKind,
)
from cityguard.evidence import EvidenceError, RunRecord, SqliteStore, new_run
from cityguard.evidence.recorder import INTERRUPTED, record_run

SYSTEM = Subject(SubjectKind.SYSTEM, "Fachverfahren Meldewesen")
SECRET = "hunter2-correct-horse-battery"  # a foreign error's text that must never be stored


class DrillFailed(CityguardError):
    exit_code = ExitCode.FAILED


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "evidence.sqlite") as opened:
        yield opened


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs" / "20250314T092653.589793Z-drill"
    path.mkdir(parents=True)
    return path


def make_run(run_dir: Path | None) -> RunRecord:
    return new_run("musterstadt", "drill", ["web1"], artifacts_dir=run_dir, baseline="b")


def everything_stored(db: Path) -> str:
    """Every value in every table, so a test can assert what is nowhere in the store."""
    with closing(sqlite3.connect(db)) as raw:
        tables = [
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return "\n".join(repr(raw.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)


def test_a_normal_close_keeps_code_summary_and_records(store: SqliteStore, run_dir: Path) -> None:
    run = make_run(run_dir)
    with record_run(store, run) as rec:
        rec.add_measurements([Measurement("rto_s", 212, "s", SYSTEM, 3600, Comparison.AT_MOST)])
        rec.add_changes([Change(SYSTEM, "CG-DR-001", "restored the test copy")])
        rec.finish(ExitCode.OK, {"drilled": 1})
    loaded = store.get_run(run.id)
    assert loaded.exit_code == 0 and loaded.summary == {"drilled": 1}
    assert loaded.finished_at is not None and loaded.baseline == "b"
    assert store.measurements(run.id)[0].met is True
    assert store.changes(run.id) == [Change(SYSTEM, "CG-DR-001", "restored the test copy")]


@pytest.mark.parametrize(
    ("raised", "code", "summary"),
    [
        (RuntimeError(SECRET), ExitCode.INTERNAL, {"error": "RuntimeError"}),
        (KeyboardInterrupt(), INTERRUPTED, {"error": "interrupted"}),
        (
            UsageError("no such control:\n  CG-NOPE-001"),
            ExitCode.USAGE,
            {"error": "UsageError", "message": "no such control: CG-NOPE-001"},
        ),
        (DrillFailed("restore did not verify"), ExitCode.FAILED, None),
        (EvidenceError("store is gone"), ExitCode.PARTIAL, None),
    ],
)
def test_a_block_ending_in_an_exception_closes_with_its_code(
    store: SqliteStore, tmp_path: Path, raised: BaseException, code: int, summary: object
) -> None:
    run = make_run(None)
    with pytest.raises(type(raised)), record_run(store, run) as rec:
        rec.finish(ExitCode.OK, {"never": "kept"})  # the exception decides, not this
        raise raised
    loaded = store.get_run(run.id)
    assert loaded.exit_code == code
    assert loaded.finished_at is not None
    if summary is not None:
        assert loaded.summary == summary
    assert "never" not in loaded.summary
    assert SECRET not in everything_stored(tmp_path / "evidence.sqlite")


def test_a_block_that_never_finishes_closes_as_internal(store: SqliteStore) -> None:
    run = make_run(None)
    with record_run(store, run):
        pass
    assert store.get_run(run.id).exit_code == ExitCode.INTERNAL


def write_files(run_dir: Path) -> dict[str, bytes]:
    files = {
        "inventory.yml": b"all:\n  hosts:\n    web1: {}\n",
        "artifacts/20250314T092653Z-1a2b3c4d/stdout": b"PLAY [all] \xe2\x9c\x93\n",
        "artifacts/20250314T092653Z-1a2b3c4d/rc": b"0",
        "artifacts/20250314T092653Z-1a2b3c4d/job_events/1-abc.json": b'{"event": "x"}',
        "artifacts/20250314T092653Z-1a2b3c4d/cityguard_task_tags.jsonl": b'["u", ["t"]]\n',
        "drill/empty.bin": b"",
    }
    for relative, content in files.items():
        path = run_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (run_dir / "link-to-elsewhere").symlink_to(run_dir.parent)  # not the run's own file
    return files


@pytest.mark.parametrize("crash", [False, True])
def test_artifacts_are_recorded_with_their_sha256_also_on_crash(
    store: SqliteStore, run_dir: Path, crash: bool
) -> None:
    run = make_run(run_dir)
    files: dict[str, bytes] = {}
    with pytest.raises(RuntimeError) if crash else nullcontext(), record_run(store, run) as rec:
        files = write_files(run_dir)
        if crash:
            raise RuntimeError("boom")
        rec.finish(ExitCode.OK)
    recorded = {a.path: a for a in store.artifacts(run.id)}
    assert sorted(recorded) == sorted(files)
    for relative, content in files.items():
        assert recorded[relative].sha256 == hashlib.sha256(content).hexdigest()
        assert recorded[relative].size == len(content)
    types = {path: a.media_type for path, a in recorded.items()}
    assert types["inventory.yml"] == "application/yaml"
    assert types["artifacts/20250314T092653Z-1a2b3c4d/stdout"] == "text/plain"
    assert types["artifacts/20250314T092653Z-1a2b3c4d/cityguard_task_tags.jsonl"] == (
        "application/jsonl"
    )
    assert types["drill/empty.bin"] == "application/octet-stream"
    assert store.get_run(run.id).exit_code == (ExitCode.INTERNAL if crash else ExitCode.OK)


def test_a_run_without_a_directory_records_no_artifacts(store: SqliteStore, tmp_path: Path) -> None:
    for run in (make_run(None), make_run(tmp_path / "never-created")):
        with record_run(store, run) as rec:
            rec.finish(ExitCode.OK)
        assert store.artifacts(run.id) == []
        assert store.get_run(run.id).exit_code == 0


def test_artifacts_that_cannot_be_recorded_fail_a_good_run(
    store: SqliteStore, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(run_dir)

    def broken(run_id: str, artifacts: object) -> None:
        raise EvidenceError("disk full")

    monkeypatch.setattr(store, "add_artifacts", broken)
    run = make_run(run_dir)
    with pytest.raises(EvidenceError, match="disk full"), record_run(store, run) as rec:
        rec.finish(ExitCode.OK)
    loaded = store.get_run(run.id)
    assert loaded.exit_code == ExitCode.PARTIAL  # not a success without its files
    assert loaded.summary == {"error": "EvidenceError", "message": "disk full"}

    crashed = make_run(run_dir)
    with pytest.raises(DrillFailed), record_run(store, crashed):
        raise DrillFailed("restore did not verify")
    assert store.get_run(crashed.id).exit_code == ExitCode.FAILED  # the original error wins


def test_steps_are_timed_with_their_outcome(store: SqliteStore, tmp_path: Path) -> None:
    run = make_run(None)
    before = datetime.now(UTC)
    with record_run(store, run) as rec:
        with rec.step("preflight", SYSTEM) as step:
            step.detail = "backup of 2025-03-13 found"
        with rec.step("restore", SYSTEM) as step:
            step.fail("checksum mismatch in 2 files")
        with pytest.raises(DrillFailed), rec.step("verify", SYSTEM):
            raise DrillFailed("40 checks, 2 failed")
        with pytest.raises(UsageError), rec.step("cleanup", SYSTEM) as step:
            step.detail = "kept the copy"
            raise UsageError("no target host")
        with pytest.raises(ValueError), rec.step("report", Subject.host("web1")):
            raise ValueError(SECRET)
        rec.finish(ExitCode.FAILED)
    after = datetime.now(UTC)
    steps = store.steps(run.id)
    assert [(s.name, s.outcome, s.detail) for s in steps] == [
        ("preflight", Outcome.PASS, "backup of 2025-03-13 found"),
        ("restore", Outcome.FAIL, "checksum mismatch in 2 files"),
        ("verify", Outcome.FAIL, "DrillFailed: 40 checks, 2 failed"),
        ("cleanup", Outcome.ERROR, "kept the copy; UsageError: no target host"),
        ("report", Outcome.ERROR, "ValueError"),  # a foreign error's text is not kept
    ]
    assert steps[4].subject == Subject.host("web1")
    for step in steps:
        assert before <= step.started_at <= step.finished_at <= after
    for earlier, later in pairwise(steps):
        assert earlier.finished_at <= later.started_at
    assert SECRET not in everything_stored(tmp_path / "evidence.sqlite")


def test_ctrl_c_in_a_step_records_it_and_closes_the_run(store: SqliteStore) -> None:
    run = make_run(None)
    with (
        pytest.raises(KeyboardInterrupt),
        record_run(store, run) as rec,
        rec.step("restore", SYSTEM),
    ):
        raise KeyboardInterrupt
    (step,) = store.steps(run.id)
    assert (step.outcome, step.detail) == (Outcome.ERROR, "interrupted")
    assert store.get_run(run.id).exit_code == INTERRUPTED


def test_records_are_stored_as_given(store: SqliteStore) -> None:
    """What an area hands over is kept verbatim; keeping secrets out of it is the area's job,
    which is why the recorder itself adds nothing but cityguard's own messages."""
    run = make_run(None)
    detail = "restored from s3://backups/melde (credentials from systemd)"
    with record_run(store, run) as rec:
        with rec.step("restore", SYSTEM) as step:
            step.detail = detail
        rec.finish(ExitCode.OK)
    assert store.steps(run.id)[0].detail == detail
