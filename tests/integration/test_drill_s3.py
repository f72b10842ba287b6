"""The off-site copy on a real S3 server with Object Lock: Versity Gateway (posix backend with a
versioning directory) started on 127.0.0.1 with a data directory of its own, stopped by its
process group when the module ends, also on failure. No lab host is needed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cityguard.config.paths import cache_dir
from cityguard.core.secrets import SecretRef
from cityguard.drill import restic
from cityguard.drill.objectlock import (
    LockPolicy,
    lifecycle_warnings,
    lock_problems,
    noncurrent_since,
)
from cityguard.drill.runner import Restic
from cityguard.drill.s3 import Bucket, Expiry, OffsiteError

pytestmark = pytest.mark.integration

VERSITY = cache_dir() / "go" / "bin-versitygw-1.8.0" / "versitygw"
ACCESS = "cgtestaccess"
SECRET = "cgtest-S3-secret-5d1e"
POLICY = LockPolicy(retention_days=7)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    data: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data: Path, port: int, address: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Versity Gateway on ``address`` (loopback, or this machine's end of a lab bridge)."""
    (data / "objects").mkdir(parents=True, exist_ok=True)
    (data / "versions").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ROOT_ACCESS_KEY_ID": ACCESS, "ROOT_SECRET_ACCESS_KEY": SECRET}
    process = subprocess.Popen(
        [str(VERSITY), "--port", f"{address}:{port}", "posix", "--versioning-dir",
         str(data / "versions"), str(data / "objects")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data / "server.log").open("wb"),
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((address, port)) == 0:
                return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop(process)
    pytest.fail(f"versitygw did not start: {(data / 'server.log').read_text()[-500:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if not VERSITY.exists():
        pytest.fail("versitygw is not built: run tools/components/versitygw.sh")
    data = tmp_path_factory.mktemp("versity")
    port = free_port()
    process = start(data, port)
    try:
        yield S3Server(f"http://127.0.0.1:{port}", process, data)
    finally:
        stop(process)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> tuple[SecretRef, SecretRef]:
    monkeypatch.setenv("CG_TEST_S3_ACCESS", ACCESS)
    monkeypatch.setenv("CG_TEST_S3_SECRET", SECRET)
    return SecretRef.env("CG_TEST_S3_ACCESS"), SecretRef.env("CG_TEST_S3_SECRET")


def bucket(server: S3Server, keys: tuple[SecretRef, SecretRef], name: str) -> Bucket:
    return Bucket(server.endpoint, name, "us-east-1", *keys)


def raw_client(server: S3Server) -> object:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_bucket_is_created_locked_and_read_back(server: S3Server, keys) -> None:  # type: ignore[no-untyped-def]
    target = bucket(server, keys, "cg-portal")
    done = target.ensure(POLICY)
    assert done[0] == "created bucket cg-portal with Object Lock"
    observed = target.observed()
    assert observed.versioning == "Enabled" and observed.lock_enabled
    assert observed.mode == "COMPLIANCE" and observed.days == 7
    # Versity Gateway 1.8.0 answers NotImplemented to lifecycle rules: said, never hidden
    assert "does not implement lifecycle rules: cityguard expires noncurrent" in done[1]
    assert observed.noncurrent_days is None
    assert lock_problems(observed, POLICY) == []
    assert lifecycle_warnings(observed, POLICY) == [
        "no lifecycle rule expires noncurrent versions: cityguard expires them on each "
        "`backup offsite --setup` run"
    ]
    assert not target.ensure(POLICY)[0].startswith("created")  # idempotent: no second create


def test_a_locked_version_cannot_be_deleted_or_overwritten(server: S3Server, keys) -> None:  # type: ignore[no-untyped-def]
    bucket(server, keys, "cg-immutable").ensure(POLICY)
    client = raw_client(server)
    first = client.put_object(Bucket="cg-immutable", Key="data/pack1", Body=b"original")  # type: ignore[attr-defined]
    version = first["VersionId"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket="cg-immutable", Key="data/pack1", VersionId=version)  # type: ignore[attr-defined]
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # an overwrite is a new version; the locked one is still there, unchanged
    client.put_object(Bucket="cg-immutable", Key="data/pack1", Body=b"ransomware")  # type: ignore[attr-defined]
    old = client.get_object(Bucket="cg-immutable", Key="data/pack1", VersionId=version)  # type: ignore[attr-defined]
    assert old["Body"].read() == b"original"
    with pytest.raises(ClientError):
        client.delete_object(Bucket="cg-immutable", Key="data/pack1", VersionId=version)  # type: ignore[attr-defined]


def test_a_weakened_lock_configuration_is_reported(server: S3Server, keys) -> None:  # type: ignore[no-untyped-def]
    target = bucket(server, keys, "cg-weakened")
    target.ensure(POLICY)
    client = raw_client(server)
    # the server accepts shortening the retention and switching to GOVERNANCE
    client.put_object_lock_configuration(  # type: ignore[attr-defined]
        Bucket="cg-weakened",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    problems = lock_problems(target.observed(), POLICY)
    assert "default retention mode is GOVERNANCE, not COMPLIANCE" in problems
    assert "default retention is 1 days, less than 7 days" in problems


def test_retention_of_current_objects_is_extended(server: S3Server, keys) -> None:  # type: ignore[no-untyped-def]
    target = bucket(server, keys, "cg-extend")
    target.ensure(POLICY)
    client = raw_client(server)
    client.put_object(Bucket="cg-extend", Key="snapshots/a", Body=b"x")  # type: ignore[attr-defined]
    assert target.extend_retention(POLICY) == 1
    retention = client.get_object_retention(Bucket="cg-extend", Key="snapshots/a")  # type: ignore[attr-defined]
    assert retention["Retention"]["Mode"] == "COMPLIANCE"


def test_noncurrent_versions_expire_once_their_retention_ends(server: S3Server, keys) -> None:  # type: ignore[no-untyped-def]
    """Versity Gateway has no lifecycle rules, so cityguard expires noncurrent versions itself.
    Measured on Versity 1.8.0: a noncurrent version is dated when it stopped being current (the
    overwrite, the delete), and deleting a version whose retention has not ended is refused
    with AccessDenied, for an explicit retention and for the bucket's default one (which
    get_object_retention does not even report); once an explicit retention has ended the
    version can be deleted. The server enforces retention in real time, so ``now`` is moved
    past noncurrent_days while the real clock is not."""
    policy = LockPolicy(retention_days=1)
    name = "cg-expiry"
    target = bucket(server, keys, name)
    target.ensure(policy)
    client = raw_client(server)
    until = datetime.now(UTC) + timedelta(seconds=4)
    short = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
    old = {
        # (a) an explicit retention of a few seconds; other/a is outside the plan's prefix
        key: client.put_object(Bucket=name, Key=key, Body=b"old", **short)["VersionId"]  # type: ignore[attr-defined]
        for key in ("portal/a", "other/a")
    }
    # (b) the bucket's default retention (1 day); (c) a key that is deleted
    old["portal/b"] = client.put_object(Bucket=name, Key="portal/b", Body=b"old")["VersionId"]  # type: ignore[attr-defined]
    old["portal/c"] = client.put_object(Bucket=name, Key="portal/c", Body=b"old")["VersionId"]  # type: ignore[attr-defined]
    time.sleep(1.1)  # the server dates versions to the second
    changed = datetime.now(UTC)
    for key in ("portal/a", "other/a", "portal/b"):
        client.put_object(Bucket=name, Key=key, Body=b"new")  # type: ignore[attr-defined]
    client.delete_object(Bucket=name, Key="portal/c")  # type: ignore[attr-defined]
    before = target.versions("")
    current = {(v.key, v.version_id) for v in before if v.latest}
    assert len(current) == 4 and len(before) == 8

    # each noncurrent entry stopped being current at the overwrite or the delete
    stopped = {entry.key: when for entry, when in noncurrent_since(target.versions("portal/"))}
    assert set(stopped) == {"portal/a", "portal/b", "portal/c"}
    assert all(abs(when - changed) < timedelta(seconds=3) for when in stopped.values()), stopped
    # at the real time none is old enough
    assert target.expire_noncurrent(policy, "portal/") == Expiry(0, 0)

    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.0)
    later = datetime.now(UTC) + timedelta(days=policy.noncurrent_days + 1)
    # (a) is removed; (b) and the deleted (c) are refused: their default retention runs
    assert target.expire_noncurrent(policy, "portal/", now=later) == Expiry(1, 2)
    after = {(v.key, v.version_id) for v in target.versions("")}
    assert {(v.key, v.version_id) for v in before} - after == {("portal/a", old["portal/a"])}
    assert current <= after and ("other/a", old["other/a"]) in after
    assert ("portal/b", old["portal/b"]) in after and ("portal/c", old["portal/c"]) in after
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=name, Key="portal/b", VersionId=old["portal/b"])  # type: ignore[attr-defined]
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # a second run has nothing left to expire; the locked ones are still counted
    assert target.expire_noncurrent(policy, "portal/", now=later) == Expiry(0, 2)


def test_restic_works_on_the_locked_bucket(server: S3Server, keys, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bucket(server, keys, "cg-restic").ensure(POLICY)
    monkeypatch.setenv("CG_TEST_RESTIC_PASSWORD", "restic-S3-pw-0c1d")
    repo = Restic(
        restic.Repo(
            f"s3:{server.endpoint}/cg-restic/portal", str(restic.restic_binary(cache_dir()))
        ),
        SecretRef.env("CG_TEST_RESTIC_PASSWORD"),
        *keys,
    )
    repo.run(restic.init_args(), "creating the repository", timeout=120)
    tags = restic.snapshot_tags("portal", "s1", "manifest")
    done = repo.run(
        restic.backup_stdin_args("/m.json", tags=tags, host="portal"), "backup", input_text="{}"
    )
    snapshot = restic.parse_backup(done.stdout).snapshot_id
    assert [s.id for s in repo.snapshots(["cg-system=portal"])] == [snapshot]
    check = restic.parse_check(repo.run(restic.check_args("100%"), "check").stdout)
    assert check.ok


def test_server_stopped_gives_retries_then_one_clear_error(keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    process = start(tmp_path, port)
    try:
        target = Bucket(f"http://127.0.0.1:{port}", "cg-gone", "us-east-1", *keys)
        target.ensure(POLICY)
    finally:
        stop(process)
    started = time.monotonic()
    with pytest.raises(OffsiteError) as failed:
        target.observed()
    assert "reading the lock configuration of cg-gone" in str(failed.value)
    assert SECRET not in str(failed.value)
    assert time.monotonic() - started < 60


def test_backup_offsite_command_sets_up_then_reports_a_weakened_bucket(  # type: ignore[no-untyped-def]
    server: S3Server, keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import io
    import shutil

    import yaml

    from cityguard import cli
    from cityguard.config import content_root

    site_dir = tmp_path / "site"
    shutil.copytree(content_root() / "examples" / "site", site_dir)
    plan_path = site_dir / "plans" / "citizen-portal.yml"
    plan = yaml.safe_load(plan_path.read_text())
    plan["repository"] = {
        "s3": {
            "endpoint": server.endpoint,
            "bucket": "cg-cli",
            "access_key_env": "CG_TEST_S3_ACCESS",
            "secret_key_env": "CG_TEST_S3_SECRET",
            "retention_days": 7,
        },
        "password_env": "CG_TEST_RESTIC_PASSWORD",
    }
    plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = cli.main(
                ["backup", "offsite", "citizen-portal", "--site", str(site_dir / "site.yml"), *args]
            )
        return code, out.getvalue()

    code, text = run("--setup")
    assert code == 0, text
    assert "cg-cli: Object Lock as planned" in text and "warning: no lifecycle rule" in text
    assert "cg-cli: noncurrent versions: 0 expired, 0 still locked" in text, text
    raw_client(server).put_object_lock_configuration(  # type: ignore[attr-defined]
        Bucket="cg-cli",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2}},
        },
    )
    code, text = run()
    assert code == 1, text
    assert "cg-cli: weakened: default retention is 2 days, less than 7 days" in text
    assert SECRET not in text
    evidence = (tmp_path / "state" / "evidence.sqlite").read_bytes().decode("latin-1")
    assert SECRET not in evidence and "CG-DR-005" in evidence
    assert "noncurrent versions: 0 expired, 0 still locked" in evidence


def test_undelete_restores_only_what_was_deleted_since_the_incident(  # type: ignore[no-untyped-def]
    server: S3Server, keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker deletes every current object of the repository; `backup undelete --since`
    removes only the delete markers made since then, so the repository opens again, while the
    snapshot restic itself forgot before the incident stays forgotten."""
    import contextlib
    import io
    import shutil
    from datetime import UTC, datetime

    import yaml

    from cityguard import cli
    from cityguard.config import content_root

    site_dir = tmp_path / "site"
    shutil.copytree(content_root() / "examples" / "site", site_dir)
    plan_path = site_dir / "plans" / "citizen-portal.yml"
    plan = yaml.safe_load(plan_path.read_text())
    s3 = {"endpoint": server.endpoint, "bucket": "cg-attacked", "prefix": "portal",
          "access_key_env": "CG_TEST_S3_ACCESS", "secret_key_env": "CG_TEST_S3_SECRET"}  # fmt: skip
    plan["repository"] = {"s3": s3, "password_env": "CG_TEST_RESTIC_PASSWORD"}
    plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("CG_TEST_RESTIC_PASSWORD", "undelete-pw-77c2")
    bucket(server, keys, "cg-attacked").ensure(POLICY)
    repo = Restic(
        restic.Repo(
            f"s3:{server.endpoint}/cg-attacked/portal", str(restic.restic_binary(cache_dir()))
        ),
        SecretRef.env("CG_TEST_RESTIC_PASSWORD"),
        *keys,
    )
    repo.run(restic.init_args(), "init", timeout=120)
    made = []
    for set_id in ("old", "kept"):
        tags = restic.snapshot_tags("citizen-portal", set_id, "manifest")
        done = repo.run(
            restic.backup_stdin_args("/m.json", tags=tags, host="citizen-portal"),
            "backup",
            input_text=set_id,
        )
        made.append(restic.parse_backup(done.stdout).snapshot_id)
    repo.run(("forget", made[0]), "forget")  # restic's own delete, before the incident
    time.sleep(1.5)  # the server dates versions to the second
    incident = datetime.now(UTC)
    time.sleep(1.5)
    client = raw_client(server)
    current = client.list_objects_v2(Bucket="cg-attacked", Prefix="portal/")["Contents"]  # type: ignore[attr-defined]
    for item in current:
        client.delete_object(Bucket="cg-attacked", Key=item["Key"])  # type: ignore[attr-defined]
    with pytest.raises(restic.ResticError):
        repo.snapshots(["cg-system=citizen-portal"])

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = cli.main(
                ["backup", "undelete", "citizen-portal", "--site", str(site_dir / "site.yml"),
                 "--since", incident.isoformat(), *args]
            )  # fmt: skip
        return code, out.getvalue()

    code, text = run("--check")
    assert code == 0, text
    # restic's own deletes before the incident (its locks, the forgotten snapshot) stay
    older = int(text.split()[2]) - len(current)
    assert text.startswith(f"{len(current)} of ") and older >= 2, text
    assert "would restore portal/config" in text
    assert f"portal/snapshots/{made[0]}" not in text and "portal/locks/" not in text
    code, text = run()
    assert code == 0, text
    assert "citizen-portal: the repository opens: 1 snapshots" in text, text
    assert [s.id for s in repo.snapshots(["cg-system=citizen-portal"])] == [made[1]]
    assert "undelete-pw-77c2" not in text and SECRET not in text
    code, text = run("--since", "2026-12-03T06:00:00")  # argparse: the last --since wins
    assert code == 2 and text.strip() == (
        "--since: '2026-12-03T06:00:00' has no time zone (e.g. 2026-12-03T06:00:00Z)"
    ), text
