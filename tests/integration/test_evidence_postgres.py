"""The evidence contract against a real PostgreSQL 15 server started for this test session.

The server runs from a temporary directory as the ``postgres`` OS user (PostgreSQL refuses to
run as root), listens on a unix socket in that directory and on 127.0.0.1 only, and demands a
password (scram-sha-256) from everyone. It is stopped by its PID and the directory removed,
whatever happens in the tests.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from cityguard.evidence import SCHEMA_VERSION, EvidenceError, open_store
from cityguard.evidence.postgres import PostgresStore

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
if "evidence_contract" not in sys.modules:
    pytest.register_assert_rewrite("evidence_contract")
from evidence_contract import CHECKS, EvidenceStoreContract, make_run  # noqa: E402

pytestmark = pytest.mark.integration

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN = "cityguard_admin"
ROLE = "cityguard_evidence"


@dataclass(frozen=True)
class PgServer:
    pid: int
    port: int
    socket_dir: Path
    admin_password: str
    password: str  # ROLE's; deliberately awkward for URIs: "@", "/", "!"

    def dsn(self, dbname: str, *, password: str | None = None, port: int | None = None) -> str:
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{ROLE}:{secret}@127.0.0.1:{port or self.port}/{dbname}"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=ADMIN, password=self.admin_password,
            dbname=dbname, autocommit=True, connect_timeout=5,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_as_kwargs() -> dict[str, Any]:
    """subprocess arguments dropping root to the postgres user; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' OS user to run PostgreSQL as")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown by PID (SIGINT), then SIGKILL if it does not go within 30 s."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def _wait_ready(proc: subprocess.Popen[bytes], server: PgServer, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"postgres exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.admin().close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                pytest.fail(f"postgres not accepting connections:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if not all(os.access(PG_BIN / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
        pytest.skip("PostgreSQL server binaries not found: apt-get install postgresql")
    run_as = _run_as_kwargs()
    workdir = Path(tempfile.mkdtemp(prefix="cityguard-pg-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        if run_as:
            os.chown(workdir, run_as["user"], run_as["group"])
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(workdir)}
        admin_password = secrets.token_urlsafe(24)
        pwfile = workdir / "pwfile"
        pwfile.write_text(admin_password + "\n")
        pwfile.chmod(0o600)
        if run_as:
            os.chown(pwfile, run_as["user"], run_as["group"])
        initdb = [
            str(PG_BIN / "initdb"), "-D", str(workdir / "data"), "-U", ADMIN,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-locale",
            "--no-sync", "--no-instructions",
        ]  # fmt: skip
        done = subprocess.run(initdb, cwd=workdir, env=env, capture_output=True, **run_as)
        pwfile.unlink()
        if done.returncode != 0:
            pytest.fail(f"initdb failed: {done.stderr.decode(errors='replace')}")
        port = _free_port()
        log = workdir / "postgres.log"
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(workdir / "data"), "-k", str(workdir),
                 "-h", "127.0.0.1", "-p", str(port), "-c", "fsync=off",
                 "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
                cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, **run_as,
            )  # fmt: skip
        server = PgServer(
            proc.pid, port, workdir, admin_password, "Ev!d@nce/" + secrets.token_urlsafe(16)
        )
        _wait_ready(proc, server, log)
        with server.admin() as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(server.password)
                )
            )
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def dbname(pg_server: PgServer) -> Iterator[str]:
    """A fresh database owned by the evidence role, dropped after the test."""
    name = "evidence_" + uuid.uuid4().hex[:12]
    with pg_server.admin() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(ROLE)
            )
        )
    yield name
    with pg_server.admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def store(pg_server: PgServer, dbname: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_server.dsn(dbname)) as opened:
        yield opened


@pytest.fixture
def reopen(pg_server: PgServer, dbname: str) -> Iterator[Callable[[], PostgresStore]]:
    opened: list[PostgresStore] = []

    def _open() -> PostgresStore:
        opened.append(PostgresStore(pg_server.dsn(dbname)))
        return opened[-1]

    yield _open
    for each in opened:
        each.close()


@pytest.fixture
def force_schema_version(pg_server: PgServer, dbname: str) -> Callable[[int], None]:
    def _force(version: int) -> None:
        with pg_server.admin(dbname) as raw:
            raw.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                (version, "2099-01-01T00:00:00.000000+00:00"),
            )

    return _force


@pytest.fixture
def raw(
    pg_server: PgServer, dbname: str
) -> Callable[[str, Sequence[object]], list[tuple[Any, ...]]]:
    """Statements run as the evidence role (so the tables are its own, as a store makes them)."""

    def _raw(statement: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        text = statement.replace("{float}", PostgresStore.float_type).replace("?", "%s")
        with psycopg.connect(pg_server.dsn(dbname), autocommit=True) as connection:
            cursor = connection.execute(text, list(params) or None)
            return cursor.fetchall() if cursor.description else []

    return _raw


class TestPostgresStore(EvidenceStoreContract):
    pass


def _everything_shown(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def test_repr_hides_password(store: PostgresStore, pg_server: PgServer, dbname: str) -> None:
    shown = repr(store)
    assert shown == f"PostgresStore('postgresql://{ROLE}:***@127.0.0.1:{pg_server.port}/{dbname}')"
    for secret in (pg_server.password, quote(pg_server.password, safe="")):
        assert secret not in shown
        assert secret not in str(store)
        assert secret not in repr(vars(store))  # the DSN is not kept once connected


@pytest.mark.parametrize("form", ["uri", "key=value"])
def test_connection_failure_hides_password(
    pg_server: PgServer, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()  # nothing listens there
    if form == "uri":
        dsn = pg_server.dsn("evidence", port=port) + "?connect_timeout=5"
    else:
        dsn = f"host=127.0.0.1 port={port} user={ROLE} password='{pg_server.password}'"
    with caplog.at_level(logging.DEBUG), pytest.raises(EvidenceError) as info:
        PostgresStore(dsn)
    shown = _everything_shown(info.value) + caplog.text
    assert "cannot connect to evidence store" in str(info.value)
    assert str(port) in str(info.value) and "***" in str(info.value)
    assert pg_server.password not in shown
    assert quote(pg_server.password, safe="") not in shown
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_wrong_password_hides_password(pg_server: PgServer, dbname: str) -> None:
    wrong = "Wr0ng@/" + secrets.token_urlsafe(12)
    with pytest.raises(EvidenceError) as info:
        PostgresStore(pg_server.dsn(dbname, password=wrong))
    assert "password authentication failed" in str(info.value)
    for secret in (wrong, quote(wrong, safe=""), pg_server.password):
        assert secret not in _everything_shown(info.value)


def test_unix_socket_key_value_dsn(pg_server: PgServer, dbname: str) -> None:
    dsn = (
        f"host={pg_server.socket_dir} port={pg_server.port} user={ROLE}"
        f" password='{pg_server.password}' dbname={dbname}"
    )
    with PostgresStore(dsn) as store:
        assert pg_server.password not in repr(store)
        store.start_run(make_run("r1"))
        store.add_check_results("r1", CHECKS)
        assert store.get_run("r1") == make_run("r1")
        assert store.check_results("r1") == CHECKS


def test_open_store_uses_postgres_when_dsn_given(
    tmp_path: Path, pg_server: PgServer, dbname: str
) -> None:
    with open_store(tmp_path, pg_server.dsn(dbname)) as opened:
        assert isinstance(opened, PostgresStore)
        assert opened.schema_version() == SCHEMA_VERSION
    assert not (tmp_path / "evidence.sqlite").exists()


def test_columns_are_text_and_double(
    store: PostgresStore, pg_server: PgServer, dbname: str
) -> None:
    store.start_run(make_run("r1"))
    with pg_server.admin(dbname) as raw:
        types = dict(
            raw.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            ).fetchall()
        )
        started = raw.execute("SELECT started_at, hosts FROM runs").fetchone()
    assert types["runs.started_at"] == "text"
    assert types["runs.summary"] == "text"
    assert types["check_results.duration_s"] == "double precision"
    assert types["measurements.value"] == types["measurements.target"] == "double precision"
    assert types["artifacts.size"] == "bigint"
    assert types["runs.parameters"] == types["steps.started_at"] == "text"
    assert started == ("2025-03-14T09:26:53.589793+00:00", '["web1", "db1"]')


def test_concurrent_first_open_migrates_once(pg_server: PgServer, dbname: str) -> None:
    def open_and_close(_: int) -> int:
        with PostgresStore(pg_server.dsn(dbname)) as opened:
            return opened.schema_version()

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(open_and_close, range(6))) == [SCHEMA_VERSION] * 6
    with pg_server.admin(dbname) as raw:
        rows = raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
