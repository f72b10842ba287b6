"""The change guard (playbooks/library/cityguard_change_guard.py): the rollback armed on the host.

Run as Ansible runs it, with the detached watcher (systemd's timer is proven on lab hosts, see
tests/integration/test_lockout.py): an unconfirmed change is put back on time with the revert
commands run and nothing left; a confirmed one stays; a confirmation after the revert fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cityguard.config import content_root

MODULE = content_root() / "playbooks" / "library" / "cityguard_change_guard.py"


def guard(workdir: Path, **args: Any) -> tuple[int, dict[str, Any]]:
    args_file = workdir / "args.json"
    module_args = {"base_dir": str(workdir / "guards"), "scheduler": "watcher", **args}
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
    done = subprocess.run(
        [sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True, check=False
    )
    return done.returncode, json.loads(done.stdout)


def wait_gone(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.1)
    return not path.exists()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    with open(f"/proc/{pid}/stat") as stream:
        return stream.read().split(") ")[1][0] != "Z"


def test_an_unconfirmed_change_is_put_back_on_time_and_nothing_is_left(tmp_path: Path) -> None:
    conf, new = tmp_path / "sshd.conf", tmp_path / "new.conf"
    conf.write_text("MaxAuthTries 4\n")
    conf.chmod(0o600)
    marker = tmp_path / "reloaded"
    rc, armed = guard(
        tmp_path,
        state="armed",
        paths=[str(conf), str(new)],
        restore_commands=[["touch", str(marker)]],
        timeout=2,
    )
    assert rc == 0, armed
    assert armed["changed"] is False
    conf.write_text("MaxAuthTries 0\n")
    new.write_text("bad\n")

    assert wait_gone(Path(armed["guard"]), 10), "the watcher did not revert in time"
    assert conf.read_text() == "MaxAuthTries 4\n"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    assert not new.exists()
    assert marker.exists(), "the restore command did not run"
    assert list((tmp_path / "guards").iterdir()) == []
    time.sleep(0.3)
    assert not alive(armed["watcher"])

    rc, late = guard(tmp_path, state="confirmed", guard=armed["guard"])
    assert rc != 0 and "already rolled back" in late["msg"]


def test_a_confirmed_change_stays_and_the_watcher_is_gone(tmp_path: Path) -> None:
    conf = tmp_path / "table.nft"
    conf.write_text("old\n")
    rc, armed = guard(tmp_path, state="armed", paths=[str(conf)], timeout=2)
    assert rc == 0, armed
    conf.write_text("new\n")

    rc, confirmed = guard(tmp_path, state="confirmed", guard=armed["guard"])

    assert rc == 0, confirmed
    assert not Path(armed["guard"]).exists()
    time.sleep(3)
    assert conf.read_text() == "new\n"
    assert not alive(armed["watcher"])


def test_restored_puts_the_change_back_at_once(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.write_text("old\n")
    marker = tmp_path / "reloaded"
    rc, armed = guard(
        tmp_path,
        state="armed",
        paths=[str(conf)],
        restore_commands=[["touch", str(marker)]],
        timeout=60,
    )
    conf.write_text("new\n")

    rc, restored = guard(tmp_path, state="restored", guard=armed["guard"])

    assert rc == 0 and restored["changed"] is True
    assert conf.read_text() == "old\n"
    assert marker.exists()
    assert not Path(armed["guard"]).exists()
    time.sleep(1.5)
    assert not alive(armed["watcher"])


def test_check_mode_arms_nothing(tmp_path: Path) -> None:
    args_file = tmp_path / "args.json"
    args = {
        "state": "armed",
        "paths": [str(tmp_path)],
        "base_dir": str(tmp_path / "guards"),
        "_ansible_check_mode": True,
    }
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True, check=False
    )
    result = json.loads(done.stdout)
    assert (result["changed"], result["guard"]) == (False, "")
    assert not (tmp_path / "guards").exists()


def boot_hook(tmp_path: Path) -> tuple[Path, Path, Path]:
    units = tmp_path / "units"
    unit = units / "cityguard-guards-at-boot.service"
    return (
        unit,
        units / "sysinit.target.wants" / unit.name,
        tmp_path / "guards" / "revert-at-boot.py",
    )


def test_a_reboot_before_the_confirmation_reverts_early_in_the_next_boot(tmp_path: Path) -> None:
    conf = tmp_path / "sshd.conf"
    conf.write_text("Port 22\n")
    (tmp_path / "units").mkdir()
    rc, armed = guard(
        tmp_path,
        state="armed",
        paths=[str(conf)],
        timeout=600,
        at_boot=True,
        unit_dir=str(tmp_path / "units"),
    )
    assert rc == 0, armed
    conf.write_text("Port 2222\n")
    unit, link, script = boot_hook(tmp_path)
    assert link.resolve() == unit and script.exists()
    # the reboot: the watcher (or the transient timer) is gone; systemd runs the unit's command
    os.kill(armed["watcher"], 9)
    command = next(
        line.split("=", 1)[1]
        for line in unit.read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    booted = subprocess.run(command.split(), capture_output=True, text=True, check=False)

    assert booted.returncode == 0, booted.stderr
    assert "reverted at boot" in booted.stdout
    assert conf.read_text() == "Port 22\n"
    assert list((tmp_path / "guards").iterdir()) == []
    assert not unit.exists() and not link.is_symlink()


def test_the_boot_hook_goes_with_the_last_confirmed_guard(tmp_path: Path) -> None:
    (tmp_path / "units").mkdir()
    hook = {"at_boot": True, "unit_dir": str(tmp_path / "units"), "timeout": 600}
    _, first = guard(tmp_path, state="armed", paths=[str(tmp_path / "a")], **hook)
    _, second = guard(tmp_path, state="armed", paths=[str(tmp_path / "b")], **hook)
    unit, link, script = boot_hook(tmp_path)

    guard(tmp_path, state="confirmed", guard=first["guard"])
    assert unit.exists() and link.is_symlink() and script.exists()  # the second is pending
    guard(tmp_path, state="confirmed", guard=second["guard"])
    assert not unit.exists() and not link.is_symlink() and not script.exists()
    assert list((tmp_path / "guards").iterdir()) == []
