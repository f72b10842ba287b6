"""A controller killed in the middle of a guarded change never locks ops out (issue 8).

Each test starts `cityguard harden` as a process group of its own, with a change that locks
SSH out (sshd: listen only on addresses the host lacks; firewall: SSH open only to networks
the lab is not on), waits for a step of the guarded change in ansible-runner's job events and
SIGKILLs the whole group. The host must then put its old configuration back on its own, within
the guard's timeout, and leave nothing behind: no guard directory, no systemd unit, no
callback temp directory. The same runs carry secrets in the environment under names no pattern
catches; no file under the state directory may hold them afterwards, whether the run
succeeded, failed or was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

GUARD_TIMEOUT = 12  # seconds; short so a killed run's revert is quick to observe
NORMAL_GUARD_TIMEOUT = 60  # the default: a run that must succeed is never raced by its guard
HOST = "web1"
CLI = str(Path(sys.executable).parent / "cityguard")
SECRET_ENV = {
    "KC_ADMIN_PW": "kc-" + secrets.token_hex(12),
    "CITY_API": "api-" + secrets.token_hex(12),
}

SSH_STEPS = [
    ("runner_on_ok", "Arm the host's automatic rollback of the sshd drop-in"),
    ("runner_on_ok", "Write the cityguard sshd drop-in"),
    ("runner_on_ok", "Validate the whole sshd configuration"),
    ("runner_on_ok", "Reload sshd with the new configuration"),
    ("runner_on_start", "Verify a fresh SSH login and sudo over it still work"),
]
FIREWALL_STEPS = [
    ("runner_on_ok", "Arm the host's automatic rollback of the firewall"),
    ("runner_on_ok", "Load the rulesets at boot (CG-FW-001) and write the table for the next boot"),
    ("runner_on_ok", "Load the table where it differs from the one in force"),
    ("runner_on_start", "Verify a fresh SSH login still works"),
]
# sshd told to listen only on addresses the host does not have: `sshd -t` accepts it, the reload
# kills sshd (it cannot bind), and no new login is possible until something restarts it
LOCKED_OUT_SSHD = {"CG-SSH-014": {"listen_addresses": ["192.0.2.1", "2001:db8::1"]}}
SSHD_STATE = (
    "cat /etc/ssh/sshd_config.d/00-cityguard.conf 2>/dev/null; sshd -T | grep -i listenaddress"
)
FIREWALL_STATE = (
    "cat /etc/nftables.d/cityguard.nft /etc/nftables.conf 2>/dev/null; "
    "nft list table inet cityguard 2>/dev/null; true"
)
LEFTOVERS = (
    "ls -A /var/lib/cityguard/guards 2>/dev/null; "
    "systemctl list-units --all --no-legend 'cityguard-guard-*' 2>/dev/null; true"
)


def site_copy(  # type: ignore[no-untyped-def]
    tmp_path: Path, lab, parameters: dict[str, Any], guard: int = GUARD_TIMEOUT
) -> Path:
    """The example site (same name, so the same lab) with parameters and a guard timeout."""
    target = tmp_path / "site"
    shutil.copytree(lab.site_file.parent, target)
    site = yaml.safe_load((target / "site.yml").read_text())
    site["parameters"] = parameters
    (target / "site.yml").write_text(yaml.safe_dump(site))
    inventory = yaml.safe_load((target / "inventory.yml").read_text())
    inventory.setdefault("all", {}).setdefault("vars", {})["ssh_guard_timeout"] = guard
    (target / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return target / "site.yml"


def harden(lab, site: Path, tags: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, **SECRET_ENV, "CITYGUARD_STATE": str(lab.state_dir)}
    return subprocess.Popen(
        [CLI, "harden", "--site", str(site), "--tags", tags, "--limit", HOST, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: ansible, ssh and workers with it
    )


def seen(state_dir: Path, started: float, event: str, task: str) -> bool:
    for path in state_dir.glob("runs/*/artifacts/*/job_events/*.json"):
        try:
            if path.stat().st_mtime < started:
                continue
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # runner writes it (as *-partial.json, then renamed) as we read
        payload = data.get("event_data", {})
        if data.get("event") == event and payload.get("task") == task:
            return True
    return False


def kill_at(lab, process: subprocess.Popen[str], event: str, task: str) -> None:  # type: ignore[no-untyped-def]
    started = time.time() - 1
    deadline = time.monotonic() + 240
    try:
        while not seen(lab.state_dir, started, event, task):
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(
                    f"harden ended (rc {process.returncode}) before {event} {task}: {output}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no {event} for {task!r} within 240 s")
            time.sleep(0.05)
    finally:
        with_group(process, signal.SIGKILL)
        process.wait(timeout=30)


def with_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def reachable_state(
    lab, command: str, within: float, wanted: str | None = None
) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    """The command's output over a fresh login with sudo, as soon as a login works and (given
    ``wanted``) the output is that: a host killed before its reload still answers, with the
    new file on disk until its guard fires."""
    start, last = time.monotonic(), ""
    while time.monotonic() - start < within:
        try:
            output = lab.ssh(HOST, command)
        except (AssertionError, subprocess.TimeoutExpired) as error:
            last = str(error)
        else:
            if wanted is None or output == wanted:
                return output, time.monotonic() - start
            last = f"still not the old configuration: {output}"
        time.sleep(1)
    pytest.fail(f"{HOST} not back {within:.0f} s after the kill: {last}")


def assert_nothing_left(lab) -> None:  # type: ignore[no-untyped-def]
    # a guard armed before the kill fires at its deadline even when there was nothing to put
    # back yet (killed right after arming), and removes itself right after its revert
    for _ in range(GUARD_TIMEOUT + 15):
        try:
            left = lab.ssh(HOST, LEFTOVERS).strip()
        except AssertionError as refused:
            # the revert's `reload sshd` re-executes sshd: its socket is closed for a moment
            left = f"no login yet: {refused}"
        if not left:
            break
        time.sleep(1)
    assert left == "", f"left on {HOST}: {left}"
    assert not list(Path(tempfile.gettempdir()).glob("cityguard-callbacks-*"))
    assert_no_secret(lab.state_dir)


def assert_no_secret(state_dir: Path) -> None:
    for path in state_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for name, value in SECRET_ENV.items():
                assert value.encode() not in data, f"{name}'s value is in {path}"


@pytest.mark.parametrize(("event", "task"), SSH_STEPS, ids=[t for _, t in SSH_STEPS])
def test_killed_during_a_guarded_sshd_change_the_host_reverts_on_its_own(  # type: ignore[no-untyped-def]
    lab, tmp_path, event, task
):
    before = lab.ssh(HOST, SSHD_STATE)
    site = site_copy(tmp_path, lab, LOCKED_OUT_SSHD)

    kill_at(lab, harden(lab, site, "ssh"), event, task)

    after, seconds = reachable_state(lab, SSHD_STATE, GUARD_TIMEOUT + 40, before)
    assert after == before
    print(
        f"{task}: {HOST} reachable with its old sshd configuration {seconds:.1f} s after the kill"
    )
    assert_nothing_left(lab)


@pytest.mark.parametrize(("event", "task"), FIREWALL_STEPS, ids=[t for _, t in FIREWALL_STEPS])
def test_killed_during_a_guarded_firewall_change_the_host_reverts_on_its_own(  # type: ignore[no-untyped-def]
    lab, tmp_path, event, task
):
    before = lab.ssh(HOST, FIREWALL_STATE)
    closed = {"CG-FW-004": {"admin_networks": ["192.0.2.0/24", "2001:db8::/32"]}}
    site = site_copy(tmp_path, lab, closed)

    kill_at(lab, harden(lab, site, "firewall"), event, task)

    after, seconds = reachable_state(lab, FIREWALL_STATE, GUARD_TIMEOUT + 40, before)
    assert after == before
    print(f"{task}: {HOST} reachable with its old firewall {seconds:.1f} s after the kill")
    assert_nothing_left(lab)


def test_no_secret_is_written_by_normal_or_failed_runs(lab, tmp_path):  # type: ignore[no-untyped-def]
    good = site_copy(
        tmp_path / "good", lab, {"CG-SSH-003": {"max_auth_tries": 3}}, NORMAL_GUARD_TIMEOUT
    )
    bad = site_copy(tmp_path / "bad", lab, LOCKED_OUT_SSHD)

    normal = harden(lab, good, "ssh")
    output, _ = normal.communicate(timeout=300)
    assert normal.returncode == 0, output
    failed = harden(lab, bad, "ssh")
    output, _ = failed.communicate(timeout=300)
    assert failed.returncode == 3 and "rolled back" in output, output
    # killed runs: each test of the kill matrix above scans the state directory the same way

    assert_nothing_left(lab)  # also scans every file under the state directory
