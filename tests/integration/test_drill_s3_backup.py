"""`cityguard backup run` to a real S3 server (Versity Gateway) that is stopped mid-upload.

restic repeats a failing request for about 15 minutes; cityguard stops it at the backup's time
limit (`--timeout`, else the plan's `backup_timeout`) and fails the backup with one line: the
repository stopped answering, the limit, how many retries restic printed and the last error.
The killed restic leaves its lock in the bucket; with the server back on the same data, the
next backup removes the stale lock and succeeds. The source is a lab host (db1), read over SSH
as every backup reads its sources; the S3 server runs on this machine next to restic.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import run_cli
from test_drill_s3 import ACCESS, SECRET, VERSITY, free_port, start, stop

from cityguard.config.paths import cache_dir
from cityguard.drill.restic import restic_binary

pytestmark = pytest.mark.integration

PASSWORD = "s3-stop-Secret-4e7a19"
BUCKET = "cg-stopped"
SOURCE = "/srv/cg-s3-stop"
SIZE_MB = 600  # random, so nothing compresses or deduplicates: restic uploads all of it
LIMIT_S = 30
SYSTEM = "citizen-portal"
RETRIES = r"stopped after (?:at least )?(\d+) retr(?:y|ies) \(last error: (.+)\)$"


@pytest.fixture(scope="module")
def big_source(lab_session: Any) -> Iterator[Any]:
    for binary in (restic_binary(cache_dir()), VERSITY):
        if not binary.exists():
            pytest.fail(f"{binary} is not built: run tools/components/{binary.name}.sh")
    lab_session.ssh(
        "db1", f"mkdir -p {SOURCE} && head -c {SIZE_MB}M /dev/urandom > {SOURCE}/blob && sync"
    )
    try:
        yield lab_session
    finally:
        lab_session.ssh("db1", f"rm -rf {SOURCE}")


def site_on_s3(tmp_path: Path, lab: Any, endpoint: str) -> Path:
    """The example site (same name, so the same lab and state) whose citizen-portal plan backs
    the big tree up into the bucket."""
    target = tmp_path / "site"
    shutil.copytree(lab.site_file.parent, target)
    path = target / "plans" / f"{SYSTEM}.yml"
    plan = yaml.safe_load(path.read_text())
    plan["sources"] = [{"kind": "files", "name": "bulk", "host": "db1", "paths": [SOURCE],
                       "sample": 1}]  # fmt: skip
    plan["verify"] = [{"kind": "file-hashes", "source": "bulk"}]
    plan["repository"] = {
        "s3": {
            "endpoint": endpoint,
            "bucket": BUCKET,
            "access_key_env": "CG_TEST_S3_ACCESS",
            "secret_key_env": "CG_TEST_S3_SECRET",
            "retention_days": 1,
        },
        "password_env": "CG_TEST_RESTIC_PASSWORD",
    }
    plan["backup_timeout"] = "20m"  # the first run's --timeout overrides it
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return target / "site.yml"


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


class StopWhenUploading(threading.Thread):
    """Stops the S3 server as soon as restic has stored ``packs`` data files in the bucket."""

    def __init__(self, server: Any, bucket_dir: Path, packs: int = 2) -> None:
        super().__init__(daemon=True)
        self.server, self.data, self.packs = server, bucket_dir / "data", packs
        self.started = time.monotonic()
        self.stopped_after: float | None = None
        self.packs_seen = 0
        self.quit = threading.Event()

    def run(self) -> None:
        while not self.quit.is_set():
            found = len(files_under(self.data))
            if found >= self.packs:
                self.packs_seen = found
                stop(self.server)
                self.stopped_after = time.monotonic() - self.started
                return
            time.sleep(0.05)


def restic_locks(endpoint: str) -> list[str]:
    """The lock ids in the repository, as restic lists them through the S3 API (a deleted
    object of a versioned bucket can stay on the server's disk as an older version)."""
    done = subprocess.run(
        [str(restic_binary(cache_dir())), "--repo", f"s3:{endpoint}/{BUCKET}", "--no-cache",
         "list", "locks", "--no-lock"],
        env={"RESTIC_PASSWORD": PASSWORD, "AWS_ACCESS_KEY_ID": ACCESS,
             "AWS_SECRET_ACCESS_KEY": SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )  # fmt: skip
    return done.stdout.split()


def evidence(state_dir: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state_dir / "evidence.sqlite") as db:
        return db.execute(query, params).fetchall()


def test_stopped_s3_server_fails_the_backup_in_time_then_the_next_backup_succeeds(
    big_source: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lab = big_source
    caplog.set_level(logging.DEBUG, logger="cityguard")
    monkeypatch.setenv("CITYGUARD_STATE", str(lab.state_dir))
    monkeypatch.setenv("CG_TEST_S3_ACCESS", ACCESS)
    monkeypatch.setenv("CG_TEST_S3_SECRET", SECRET)
    monkeypatch.setenv("CG_TEST_RESTIC_PASSWORD", PASSWORD)
    data = tmp_path / "versity"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    bucket_dir = data / "objects" / BUCKET
    server = start(data, port)
    try:
        site = str(site_on_s3(tmp_path, lab, endpoint))
        code, out, err = run_cli("backup", "offsite", SYSTEM, "--site", site, "--setup")
        assert code == 0, out + err
        code, out, err = run_cli("backup", "init", SYSTEM, "--site", site)
        assert code == 0, out + err
        assert not files_under(bucket_dir / "data")

        # the server goes away while restic uploads
        watcher = StopWhenUploading(server, bucket_dir)
        watcher.start()
        began = time.monotonic()
        code, out, err = run_cli("backup", "run", SYSTEM, "--site", site, "--timeout", str(LIMIT_S))
        took = time.monotonic() - began
        watcher.quit.set()
        watcher.join(15)
        print(f"server stopped after {watcher.stopped_after} s with {watcher.packs_seen} "
              f"packs stored; backup failed after {took:.1f} s: {err.strip()}")  # fmt: skip
        assert watcher.stopped_after is not None, "restic stored no data pack: " + out + err
        assert watcher.stopped_after < LIMIT_S - 10  # well inside the limit: time to retry
        assert server.poll() is not None
        assert LIMIT_S <= took < LIMIT_S + 10, took

        assert code == 3, out + err
        assert "Traceback" not in out + err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        line = lines[0]
        assert line.startswith(
            "error: backing up bulk (tar of /srv/cg-s3-stop on db1): the repository stopped "
            f"answering: the backup did not finish within {LIMIT_S} s; restic was stopped after "
        ), line
        retries = re.search(RETRIES, line)
        assert retries is not None, line
        assert int(retries[1]) > 0
        assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in retries[2], line

        # the evidence: the backup step failed with that line, the run closed with exit code 3
        run_id, exit_code, summary = evidence(
            lab.state_dir,
            "SELECT id, exit_code, summary FROM runs WHERE command = ? "
            "ORDER BY started_at DESC LIMIT 1",
            f"backup run {SYSTEM}",
        )[0]
        assert exit_code == 3 and "the repository stopped answering" in summary, summary
        steps = evidence(
            lab.state_dir,
            "SELECT name, outcome, detail FROM steps WHERE run_id = ? ORDER BY seq",
            run_id,
        )
        assert [(name, outcome) for name, outcome, _ in steps] == [
            ("preflight", "pass"),
            ("backup bulk", "error"),
        ], steps
        assert steps[0][2] == f"time limit {LIMIT_S} s"
        assert steps[1][2].startswith("TimedOut: backing up bulk (tar of /srv/cg-s3-stop on db1)")
        # the killed restic's lock is still in the bucket
        stale = files_under(bucket_dir / "locks")
        assert stale, "the stopped restic left no lock"

        # the server comes back on the same data: the stale lock is removed, the backup works
        server = start(data, port)
        code, out, err = run_cli("backup", "run", SYSTEM, "--site", site, "--format", "json")
        assert code == 0, out + err
        left = restic_locks(endpoint)
        assert not {path.name for path in stale} & set(left), left
        done = evidence(
            lab.state_dir,
            "SELECT exit_code, summary FROM runs WHERE command = ? "
            "ORDER BY started_at DESC LIMIT 1",
            f"backup run {SYSTEM}",
        )[0]
        assert done[0] == 0 and '"timeout_s": 1200' in done[1], done

        # no secret anywhere: output, log, evidence, run directories
        for secret in (SECRET, ACCESS, PASSWORD):
            assert secret not in out + err + line
            assert secret not in caplog.text
            assert secret not in (lab.state_dir / "evidence.sqlite").read_bytes().decode("latin-1")
            for (directory,) in evidence(
                lab.state_dir,
                "SELECT artifacts_dir FROM runs WHERE command LIKE ? AND artifacts_dir IS NOT NULL",
                f"backup % {SYSTEM}",
            ):
                for path in files_under(Path(directory)):
                    assert secret not in path.read_text(errors="replace"), path
    finally:
        stop(server)
