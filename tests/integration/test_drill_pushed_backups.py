"""Backups that run on their source host (``backup_runs_on: source-host``), on the lab.

`cityguard backup deploy` puts the credentials (root-only, over SSH standard input), the pinned
restic, the agent, the job and a systemd timer on db1; the test starts the timer's service on
db1 as the timer would, and db1 itself backs the citizen-portal database and uploads up into a
real S3 server (Versity Gateway, on this machine's end of db1's lab bridge, the only address db1
reaches). Then a drill from the control node restores that pushed backup onto scratch1 and
verifies it as it verifies a pulled one. With the server stopped, the host's backup fails at the
plan's time limit with one line in its journal. No secret appears anywhere but the host's
credentials file.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import run_cli
from test_drill_s3 import ACCESS, SECRET, VERSITY, free_port, start, stop

from cityguard.config import load_site
from cityguard.config.paths import cache_dir
from cityguard.drill import push
from cityguard.drill.restic import restic_binary
from cityguard.lab.site import data_for_site

pytestmark = pytest.mark.integration

PASSWORD = "push-Secret-93b1e0"
SYSTEM = "citizen-portal"
BUCKET = "cg-pushed"
SERVICE = f"cityguard-backup-{SYSTEM}.service"
TIMER = f"cityguard-backup-{SYSTEM}.timer"
LIMIT_S = 20  # the plan's backup_timeout: a working backup takes a few seconds
SECRETS = (PASSWORD, SECRET)


def control_address(lab: Any, host: str) -> str:
    """This machine's address on the host's (first) lab bridge."""
    link = next(h for h in lab.lab.hosts if h.name == host).links[0]
    network = next(n for n in lab.lab.networks if n.name == link.network)
    return str(network.control_address)


def remove_from_db1(lab: Any) -> None:
    lab.ssh(
        "db1",
        f"systemctl disable --now {TIMER} >/dev/null 2>&1 || true; "
        f"rm -f /etc/systemd/system/{SERVICE} /etc/systemd/system/{TIMER}; "
        f"rm -rf {push.CONF_DIR} {push.LIB_DIR} /var/cache/cityguard; systemctl daemon-reload",
    )


@pytest.fixture(scope="module")
def pushed_site(lab_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    for binary in (restic_binary(cache_dir()), VERSITY):
        if not binary.exists():
            pytest.fail(f"{binary} is not built: run tools/components/{binary.name}.sh")
    lab = lab_session
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab.state_dir))
        data_for_site(load_site(lab.site_file))  # the citizen-portal database and uploads
    address, port = control_address(lab, "db1"), free_port()
    data = tmp_path_factory.mktemp("versity-push")
    server = start(data, port, address)
    target = tmp_path_factory.mktemp("push") / "site"
    shutil.copytree(lab.site_file.parent, target)
    path = target / "plans" / f"{SYSTEM}.yml"
    plan = yaml.safe_load(path.read_text())
    plan["backup_runs_on"] = "source-host"
    plan["backup_timeout"] = f"{LIMIT_S}s"
    plan["repository"] = {
        "s3": {
            "endpoint": f"http://{address}:{port}",
            "bucket": BUCKET,
            "access_key_env": "CG_PUSH_S3_ACCESS",
            "secret_key_env": "CG_PUSH_S3_SECRET",
            "retention_days": 1,
        },
        "password_env": "CG_PUSH_PASSWORD",
        "check_subset": "100%",
    }
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CITYGUARD_STATE", str(lab.state_dir))
            env.setenv("CG_PUSH_S3_ACCESS", ACCESS)
            env.setenv("CG_PUSH_S3_SECRET", SECRET)
            env.setenv("CG_PUSH_PASSWORD", PASSWORD)
            yield lab, target / "site.yml", server, data, port, address
    finally:
        stop(server)
        remove_from_db1(lab)


def cli(site: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(*args, "--site", str(site))


def unit_state(lab: Any, unit: str, *properties: str) -> dict[str, str]:
    out = lab.ssh("db1", f"systemctl show {unit} " + " ".join(f"-p {p}" for p in properties))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def run_service(lab: Any, timeout_s: float) -> dict[str, str]:
    """Start the backup service on db1 as its timer would, and wait until this run ended."""
    before = unit_state(lab, SERVICE, "InvocationID")["InvocationID"]
    lab.ssh(
        "db1", f"systemctl reset-failed {SERVICE} 2>/dev/null; systemctl start --no-block {SERVICE}"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(1)
        state = unit_state(lab, SERVICE, "InvocationID", "ActiveState", "Result", "ExecMainStatus")
        if state["InvocationID"] not in ("", before) and state["ActiveState"] in (
            "inactive",
            "failed",
        ):
            return state
    raise AssertionError(f"{SERVICE} still running after {timeout_s} s")


def journal(lab: Any, since: str) -> str:
    return lab.ssh("db1", f"journalctl -u {SERVICE} --since '{since}' -o cat --no-pager")


def test_the_source_host_backs_itself_up_and_the_drill_restores_it(pushed_site: Any) -> None:
    lab, site, _, _, _, _ = pushed_site
    code, out, err = cli(site, "backup", "offsite", SYSTEM, "--setup")
    assert code == 0, out + err
    code, out, err = cli(site, "backup", "init", SYSTEM)
    assert code == 0, out + err

    # --check: says what would change and changes nothing
    code, out, err = cli(site, "backup", "deploy", "--check")
    assert code == 0, out + err
    assert f"{SYSTEM}: db1: {push.credentials_path(SYSTEM)} would change" in out
    assert lab.ssh("db1", f"test -e {push.CONF_DIR} && echo present || echo absent").strip() == (
        "absent"
    )

    code, out, err = cli(site, "backup", "deploy", SYSTEM)
    assert code == 0, out + err
    assert f"{SYSTEM}: db1: {push.credentials_path(SYSTEM)} written" in out
    modes = lab.ssh(
        "db1",
        f"stat -c '%a %U %G %n' {push.credentials_path(SYSTEM)} {push.job_path(SYSTEM)} "
        f"{push.CONF_DIR} {push.RESTIC}",
    ).splitlines()
    assert modes == [
        f"600 root root {push.credentials_path(SYSTEM)}",
        f"600 root root {push.job_path(SYSTEM)}",
        f"700 root root {push.CONF_DIR}",
        f"755 root root {push.RESTIC}",
    ]
    timer = unit_state(lab, TIMER, "UnitFileState", "ActiveState", "TimersCalendar")
    assert timer["UnitFileState"] == "enabled" and timer["ActiveState"] == "active"
    assert "01:30:00" in timer["TimersCalendar"]
    version = lab.ssh("db1", f"{push.RESTIC} version")
    assert version.startswith("restic 0.19.1"), version

    # a second deploy changes nothing
    code, out, err = cli(site, "backup", "deploy", SYSTEM)
    assert code == 0, out + err
    assert f"{push.credentials_path(SYSTEM)} unchanged" in out and "db1: 0 changed" in out

    # the control node no longer schedules this backup; the drill stays there
    code, out, err = cli(site, "drill", "schedule", "--list")
    assert code == 0 and f"{SYSTEM} backup on db1 (*-*-* 01:30:00)" in out, out + err

    since = lab.ssh("db1", "date '+%Y-%m-%d %H:%M:%S'").strip()
    state = run_service(lab, 120)
    logged = journal(lab, since)
    assert state["Result"] == "success", logged
    set_line = [line for line in logged.splitlines() if line.startswith(f"{SYSTEM}: set ")]
    assert set_line, logged
    set_id = set_line[-1].split()[2]

    # status reads the pushed backups from the repository (the evidence store has no run)
    code, out, err = cli(site, "drill", "status", "--format", "json")
    assert code == 0, out + err
    (row,) = [r for r in json.loads(out) if r["system"] == SYSTEM]
    assert row["backup_on"] == "db1" and row["backup_problem"] is None, row
    assert row["last_backup_at"] and row["rpo_met"] is True, row

    code, out, err = cli(site, "drill", "run", SYSTEM, "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    text = json.dumps(report)
    assert set_id in text, "the drill restored the set db1 pushed"
    assert report["result"] == "pass", text

    # secrets: only in the host's credentials file
    assert PASSWORD in lab.ssh("db1", f"cat {push.credentials_path(SYSTEM)}")
    host_side = lab.ssh(
        "db1",
        f"cat {push.job_path(SYSTEM)} /etc/systemd/system/{SERVICE} /etc/systemd/system/{TIMER}",
    )
    for secret in SECRETS:
        assert secret not in host_side + logged + out + err
    hosts_disks = Path(lab.state_dir) / "lab" / "hosts"  # the lab hosts' own file systems
    for file in Path(lab.state_dir).rglob("*"):
        if hosts_disks in file.parents:
            continue
        if file.is_file() and file.stat().st_size < 50_000_000:
            content = file.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in content, f"{secret[:4]}… in {file}"


def test_a_stopped_server_fails_the_host_backup_at_its_time_limit(pushed_site: Any) -> None:
    lab, site, server, data, port, address = pushed_site
    code, out, err = cli(site, "backup", "deploy", SYSTEM)
    assert code == 0, out + err
    stop(server)
    try:
        since = lab.ssh("db1", "date '+%Y-%m-%d %H:%M:%S'").strip()
        started = time.monotonic()
        state = run_service(lab, LIMIT_S + 60)
        took = time.monotonic() - started
        logged = journal(lab, since)
        assert state["Result"] != "success" and state["ExecMainStatus"] == "1", (state, logged)
        failures = [line for line in logged.splitlines() if "failed:" in line]
        assert len(failures) == 1, logged
        assert "removing stale locks" in failures[0] or "backing up" in failures[0], failures
        assert LIMIT_S - 5 <= took <= LIMIT_S + 45, took
        assert "the repository stopped answering" in failures[0], failures
    finally:
        server = start(data, port, address)
    try:  # with the server back, the next run succeeds (the killed restic's lock is stale)
        state = run_service(lab, 120)
        assert state["Result"] == "success", journal(lab, "-5min")
    finally:
        stop(server)
