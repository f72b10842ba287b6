"""The evidence contract against SQLite, plus what is specific to the SQLite file."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from cityguard.evidence import SCHEMA_VERSION, EvidenceError, SqliteStore, open_store

_TESTS_DIR = str(Path(__file__).resolve().parents[2])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
if "evidence_contract" not in sys.modules:
    pytest.register_assert_rewrite("evidence_contract")
from evidence_contract import EvidenceStoreContract, make_run  # noqa: E402


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "musterstadt" / "evidence.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(db_path) as opened:
        yield opened


@pytest.fixture
def reopen(db_path: Path) -> Iterator[Callable[[], SqliteStore]]:
    opened: list[SqliteStore] = []

    def _open() -> SqliteStore:
        opened.append(SqliteStore(db_path))
        return opened[-1]

    yield _open
    for each in opened:
        each.close()


@pytest.fixture
def force_schema_version(db_path: Path) -> Callable[[int], None]:
    def _force(version: int) -> None:
        with closing(sqlite3.connect(db_path)) as raw, raw:
            raw.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, "2099-01-01T00:00:00.000000+00:00"),
            )

    return _force


@pytest.fixture
def raw(db_path: Path) -> Callable[[str, Sequence[object]], list[tuple[Any, ...]]]:
    def _raw(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(db_path)) as connection, connection:
            statement = sql.replace("{float}", SqliteStore.float_type)
            return connection.execute(statement, list(params)).fetchall()

    return _raw


class TestSqliteStore(EvidenceStoreContract):
    pass


def _raw(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db_path)) as raw:
        return raw.execute(sql).fetchall()


def test_file_created_with_parents_in_wal_mode(store: SqliteStore, db_path: Path) -> None:
    assert db_path.is_file()
    assert store.path == db_path
    assert _raw(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_foreign_keys_enforced(store: SqliteStore) -> None:
    # a per-connection setting, so it can only be seen on the store's own connection
    connection = store._connection
    assert isinstance(connection, sqlite3.Connection)
    assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_schema_objects_and_one_row_per_version(
    store: SqliteStore, reopen: Callable[[], SqliteStore], db_path: Path
) -> None:
    store.close()
    reopen().close()
    reopen().close()
    versions = _raw(db_path, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    names = {row[0] for row in _raw(db_path, "SELECT name FROM sqlite_master")}
    expected = {
        "schema_version", "runs", "check_results", "control_results", "control_checks",
        "check_results_run", "control_results_run", "control_results_host_control",
        "steps", "measurements", "changes", "artifacts", "run_subjects",
        "control_results_control", "control_results_subject", "measurements_series",
        "changes_subject", "run_subjects_subject",
    }  # fmt: skip
    assert expected <= names


def test_stored_as_readable_text(store: SqliteStore, db_path: Path) -> None:
    store.start_run(make_run("r1"))
    rows = _raw(db_path, "SELECT started_at, hosts, tool_versions FROM runs")
    assert rows == [
        (
            "2025-03-14T09:26:53.589793+00:00",
            '["web1", "db1"]',
            '{"ansible-core": "2.19.1", "cityguard": "0.1.0"}',
        )
    ]


def test_open_store_defaults_to_sqlite_in_state_dir(tmp_path: Path) -> None:
    for dsn in (None, ""):
        with open_store(tmp_path, dsn) as opened:
            assert isinstance(opened, SqliteStore)
            assert opened.path == tmp_path / "evidence.sqlite"
            assert repr(opened) == f"SqliteStore({str(tmp_path / 'evidence.sqlite')!r})"
    assert (tmp_path / "evidence.sqlite").is_file()


def test_unopenable_path_is_an_evidence_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(EvidenceError, match="cannot open evidence store"):
        SqliteStore(blocker / "evidence.sqlite")


def test_newer_schema_refusal_leaves_file_untouched(db_path: Path) -> None:
    SqliteStore(db_path).close()
    with closing(sqlite3.connect(db_path)) as raw, raw:
        raw.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION + 1, "x"))
    with pytest.raises(EvidenceError, match="newer than this cityguard supports"):
        SqliteStore(db_path)
    versions = _raw(db_path, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 2)]
