#!/usr/bin/python
"""Ansible module: a dead man's switch, armed on the host, for changes that could lock ops out.

A broken sshd configuration, firewall ruleset, PAM stack or sudoers file can refuse the very
connection that would put the old one back, and the controller itself may die (Ctrl-C, SIGKILL,
a crash) in the seconds between making such a change and proving a fresh login still works. So
the rollback is armed on the host before the change and needs neither SSH, sudo nor the
controller:

- `state: armed` copies the given paths aside (with owner and mode), lists the given nftables
  tables as they are in force, and writes a revert script into the guard directory. Then it
  schedules that script to run after `timeout` seconds: as a transient systemd timer
  (`systemd-run --on-active`, unit `cityguard-guard-<id>`) where systemd is PID 1, else as a
  detached process in its own session that sleeps until the deadline (hosts without systemd,
  like the lab's plain flavour). The revert puts the files back (paths that did not exist are
  removed), puts the tables back as they were (or deletes those that did not exist), runs the
  `restore_commands` (e.g. reload sshd), and removes the guard directory: nothing is left.
- `state: confirmed` (after a fresh login proved the change safe) cancels the timer and drops
  the copies. If the revert already ran, the change is gone: that is a failure, not a success.
- `state: restored` cancels the timer and reverts at once, for a failure that left the
  connection working.

The revert and the confirmation take the same lock, so exactly one of them wins. A timer does
not survive a reboot, and ops who cannot log in will reboot the host: so while a guard is
pending, a boot hook is installed too (with systemd: a oneshot unit wanted by sysinit.target,
ordered before sshd and nftables load anything) that reverts every unconfirmed guard early in
the next boot. The hook is written only to disk (no daemon-reload: it matters at the next boot
only) and removed with the last pending guard, so a confirmed change leaves nothing behind.

Arming and confirming change nothing on the host that a check could see, so both report
`changed: false`; a revert reports `changed: true`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_change_guard
short_description: Roll changed files and nftables tables back on a timer unless confirmed
options:
  state:
    type: str
    choices: [armed, confirmed, restored]
    required: true
  paths:
    description: Files or directories to guard (state armed).
    type: list
    elements: path
    default: []
  nft_tables:
    description: >-
      nftables tables ("family name"), or "ruleset" for all of them, whose state in force is
      guarded (state armed).
    type: list
    elements: str
    default: []
  restore_commands:
    description: argv lists run after a revert put the files back, e.g. to reload a daemon.
    type: list
    elements: list
    default: []
  timeout:
    description: Seconds until the host reverts an unconfirmed guard (state armed).
    type: int
    default: 120
  scheduler:
    description: >-
      What runs the revert: a transient systemd timer, a detached watcher process, or auto
      (systemd where it is PID 1, else the watcher).
    type: str
    choices: [auto, systemd, watcher]
    default: auto
  guard:
    description: The guard directory `armed` returned (states confirmed and restored).
    type: path
  base_dir:
    type: path
    default: /var/lib/cityguard/guards
  at_boot:
    description: >-
      Also revert at the next boot if the host reboots before the confirmation (default: where
      the systemd timer is used).
    type: bool
  unit_dir:
    description: Where the boot hook's unit is written (state armed, at_boot).
    type: path
    default: /etc/systemd/system
"""

BOOT_UNIT = "cityguard-guards-at-boot.service"
BOOT_SCRIPT = "revert-at-boot.py"

UNIT_PREFIX = "cityguard-guard-"

# The revert, written into each guard directory and run there by the timer or the detached
# watcher (a file of its own: neither can import this module). `revert.py GUARD [DEADLINE]`
# sleeps until DEADLINE when given, then reverts unless the guard was confirmed or removed.
REVERT = r'''
import fcntl, json, os, shutil, subprocess, sys, time

def _own(source, target):
    stat = os.lstat(source)
    os.lchown(target, stat.st_uid, stat.st_gid)
    if not os.path.islink(target):
        os.chmod(target, stat.st_mode & 0o7777)

def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)

def _restore_path(guard, index, entry):
    path, kind = entry["path"], entry["kind"]
    saved = os.path.join(guard, "data", str(index))
    if kind == "absent":
        _remove(path)
    elif kind == "dir":
        wanted = set(os.listdir(saved))
        for name in os.listdir(path) if os.path.isdir(path) else []:
            if name not in wanted:
                _remove(os.path.join(path, name))
        shutil.copytree(saved, path, symlinks=True, dirs_exist_ok=True)
        for root, dirs, files in os.walk(saved):
            for name in [None, *dirs, *files]:
                source = root if name is None else os.path.join(root, name)
                _own(source, os.path.join(path, os.path.relpath(source, saved)))
    else:
        temporary = path + ".cityguard-restore"
        shutil.copy2(saved, temporary, follow_symlinks=False)
        _own(saved, temporary)
        os.replace(temporary, path)

def _restore_table(entry):
    if entry["table"] == "ruleset":
        script = "flush ruleset\n"
    else:
        family, name = entry["table"].split()
        script = "table %s %s {}\ndelete table %s %s\n" % (family, name, family, name)
    if entry["listing"] is not None:
        script += entry["listing"]
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def revert(guard):
    """Put everything back and remove the guard; False if it was confirmed or is gone."""
    try:
        lock = open(os.path.join(guard, "lock"), "a")
    except OSError:
        return False
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(guard) or os.path.exists(os.path.join(guard, "confirmed")):
            return False
        with open(os.path.join(guard, "manifest.json")) as stream:
            manifest = json.load(stream)
        for index, entry in enumerate(manifest["paths"]):
            _restore_path(guard, index, entry)
        for entry in manifest["tables"]:
            _restore_table(entry)
        for argv in manifest["commands"]:
            subprocess.run(argv, check=False, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(guard, ignore_errors=True)
    drop_boot_hook(manifest.get("boot_hook"), os.path.dirname(guard))
    return True

def pending(base):
    """The guards under ``base`` that were armed and neither confirmed nor reverted."""
    if not os.path.isdir(base):
        return []
    return [os.path.join(base, name) for name in sorted(os.listdir(base))
            if os.path.isfile(os.path.join(base, name, "manifest.json"))
            and not os.path.exists(os.path.join(base, name, "confirmed"))]

def drop_boot_hook(hook, base):
    """Remove the boot hook once no guard is pending any more."""
    if not hook or pending(base):
        return
    for path in (hook["link"], hook["unit"], hook["script"]):
        try:
            os.unlink(path)
        except OSError:
            pass

if __name__ == "__main__" and sys.argv[1] == "--boot":
    # early in a boot: the host was restarted before a change was confirmed
    base, hook = sys.argv[2], {"unit": sys.argv[3], "link": sys.argv[4], "script": sys.argv[0]}
    for guard in pending(base):
        if revert(guard):
            print("cityguard: reverted at boot the unconfirmed change guarded by " + guard)
    drop_boot_hook(hook, base)
elif __name__ == "__main__":
    guard = sys.argv[1]
    if len(sys.argv) > 2:
        deadline = float(sys.argv[2])
        while time.time() < deadline:
            time.sleep(min(1.0, max(deadline - time.time(), 0.01)))
            if not os.path.isdir(guard) or os.path.exists(os.path.join(guard, "confirmed")):
                sys.exit(0)
    if revert(guard):
        print("cityguard: reverted the unconfirmed change guarded by " + guard)
'''


def _revert_module() -> dict:
    namespace: dict = {"__name__": "cityguard_revert"}
    exec(REVERT, namespace)  # the same code the host runs on its own
    return namespace


def has_systemd() -> bool:
    """systemd is PID 1 (it creates /run/systemd/system) and systemd-run is there."""
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run") is not None


def _listing(table: str) -> str | None:
    """The table (or with "ruleset" the whole ruleset) as nft lists it; None if absent."""
    argv = ["nft", "list", "ruleset"] if table == "ruleset" else ["nft", "list", "table", *table.split()]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def _save_path(guard: str, index: int, path: str) -> str:
    saved = os.path.join(guard, "data", str(index))
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.copytree(path, saved, symlinks=True)
        return "dir"
    if os.path.lexists(path):
        shutil.copy2(path, saved, follow_symlinks=False)
        return "file"
    return "absent"


def arm(module: AnsibleModule) -> dict:
    params = module.params
    os.makedirs(params["base_dir"], mode=0o700, exist_ok=True)
    ident = uuid.uuid4().hex
    guard = os.path.join(params["base_dir"], ident)
    os.makedirs(os.path.join(guard, "data"), mode=0o700)
    try:
        for table in params["nft_tables"]:
            if table != "ruleset" and len(table.split()) != 2:
                raise ValueError(f"nft_tables: {table!r} is neither 'family name' nor 'ruleset'")
        deadline = time.time() + params["timeout"]
        scheduler = params["scheduler"]
        if scheduler == "auto":
            scheduler = "systemd" if has_systemd() else "watcher"
        at_boot = params["at_boot"] if params["at_boot"] is not None else scheduler == "systemd"
        manifest = {
            "paths": [{"path": p, "kind": _save_path(guard, i, p)}
                      for i, p in enumerate(params["paths"])],
            "tables": [{"table": t, "listing": _listing(t)} for t in params["nft_tables"]],
            "commands": [[str(arg) for arg in argv] for argv in params["restore_commands"]],
            "deadline": deadline,
            "boot_hook": install_boot_hook(params["base_dir"], params["unit_dir"])
            if at_boot else None,
        }
        with open(os.path.join(guard, "manifest.json"), "w") as stream:
            json.dump(manifest, stream)
        script = os.path.join(guard, "revert.py")
        with open(script, "w") as stream:
            stream.write(REVERT)
        schedule = _schedule_unit if scheduler == "systemd" else _schedule_watcher
        how = schedule(guard, ident, script, params["timeout"], deadline)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        shutil.rmtree(guard, ignore_errors=True)  # nothing armed: nothing may be left
        _revert_module()["drop_boot_hook"](boot_hook_paths(params["base_dir"],
                                                           params["unit_dir"]),
                                           params["base_dir"])
        module.fail_json(msg=f"could not arm the rollback: {exc}")
    with open(os.path.join(guard, "scheduled.json"), "w") as stream:
        json.dump(how, stream)
    return {"guard": guard, "deadline": int(deadline), **how}


def boot_hook_paths(base_dir: str, unit_dir: str) -> dict:
    return {
        "unit": os.path.join(unit_dir, BOOT_UNIT),
        "link": os.path.join(unit_dir, "sysinit.target.wants", BOOT_UNIT),
        "script": os.path.join(base_dir, BOOT_SCRIPT),
    }


def install_boot_hook(base_dir: str, unit_dir: str) -> dict:
    """Write the revert-at-boot script and its unit, and enable the unit by its link."""
    hook = boot_hook_paths(base_dir, unit_dir)
    with open(hook["script"], "w") as stream:
        stream.write(REVERT)
    unit = (
        "[Unit]\n"
        "Description=cityguard: roll back changes not confirmed before the reboot\n"
        "DefaultDependencies=no\n"
        "After=local-fs.target\n"
        "Before=sysinit.target nftables.service ssh.service sshd.service\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={sys.executable} {hook['script']} --boot {base_dir} "
        f"{hook['unit']} {hook['link']}\n"
        "[Install]\n"
        "WantedBy=sysinit.target\n"
    )
    with open(hook["unit"], "w") as stream:
        stream.write(unit)
    os.makedirs(os.path.dirname(hook["link"]), exist_ok=True)
    if not os.path.lexists(hook["link"]):
        os.symlink(hook["unit"], hook["link"])
    return hook


def _schedule_unit(guard: str, ident: str, script: str, timeout: int, deadline: float) -> dict:
    unit = UNIT_PREFIX + ident
    argv = ["systemd-run", "--quiet", "--unit", unit, f"--on-active={timeout}s",
            "--timer-property=AccuracySec=1s", "--timer-property=RemainAfterElapse=no",
            "--description=cityguard: roll back a change not confirmed in time",
            "--property=CollectMode=inactive-or-failed", sys.executable, script, guard]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(f"systemd-run failed: {(result.stderr or result.stdout).strip()}")
    return {"unit": unit}


def _schedule_watcher(guard: str, ident: str, script: str, timeout: int, deadline: float) -> dict:
    watcher = subprocess.Popen(
        [sys.executable, script, guard, str(deadline)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, cwd="/",
    )
    return {"watcher": watcher.pid}


def cancel(guard: str) -> None:
    """Stop the timer or the watcher; the caller holds the guard's lock."""
    try:
        with open(os.path.join(guard, "scheduled.json")) as stream:
            how = json.load(stream)
    except (OSError, ValueError):
        return  # armed half-way: the revert's own checks keep it harmless
    if "unit" in how:
        subprocess.run(["systemctl", "stop", how["unit"] + ".timer"], capture_output=True,
                       check=False)
    elif "watcher" in how:
        try:
            os.kill(int(how["watcher"]), signal.SIGTERM)
        except (OSError, ValueError):
            pass  # already gone


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["armed", "confirmed", "restored"],
                      "required": True},
            "paths": {"type": "list", "elements": "path", "default": []},
            "nft_tables": {"type": "list", "elements": "str", "default": []},
            "restore_commands": {"type": "list", "elements": "list", "default": []},
            "timeout": {"type": "int", "default": 120},
            "scheduler": {"type": "str", "choices": ["auto", "systemd", "watcher"],
                          "default": "auto"},
            "guard": {"type": "path"},
            "base_dir": {"type": "path", "default": "/var/lib/cityguard/guards"},
            "at_boot": {"type": "bool"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        required_if=[("state", "confirmed", ["guard"]), ("state", "restored", ["guard"])],
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode:
        module.exit_json(changed=False, guard="")
    if params["state"] == "armed":
        module.exit_json(changed=False, **arm(module))
    guard = params["guard"]
    import fcntl

    try:
        lock = open(os.path.join(guard, "lock"), "a")
    except OSError:
        lock = None
    if lock is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        present = os.path.isdir(guard)
        if params["state"] == "confirmed":
            if not present:
                module.fail_json(msg="the change was already rolled back on the host: it was "
                                     "not confirmed within the guard's timeout")
            with open(os.path.join(guard, "confirmed"), "w"):
                pass
            cancel(guard)
            with open(os.path.join(guard, "manifest.json")) as stream:
                hook = json.load(stream).get("boot_hook")
            shutil.rmtree(guard, ignore_errors=True)
            _revert_module()["drop_boot_hook"](hook, os.path.dirname(guard))
            module.exit_json(changed=False)
        if not present:
            module.exit_json(changed=True, msg="the host had already rolled the change back")
        cancel(guard)
    finally:
        if lock is not None:
            lock.close()
    _revert_module()["revert"](guard)
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
