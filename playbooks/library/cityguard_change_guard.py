#!/usr/bin/python
"""Ansible module: a dead man's switch for changes that could lock Ansible out.

A broken PAM stack or sudoers file breaks sudo, and with it every later task, including the
one that would put the old files back. So the rollback must not need sudo, nor SSH:

- `state: armed` copies the given paths aside (with owner and mode) and starts a detached
  watcher process, as root, in its own session. Unless the guard is confirmed within `timeout`
  seconds, the watcher puts the copies back: files and directories as they were, paths that
  did not exist removed.
- `state: confirmed` (after a fresh login and sudo proved the change safe) stops the watcher
  and drops the copies.
- `state: restored` puts the copies back at once, for a failure that left sudo working.

Arming and confirming change nothing on the host that a check could see, so both report
`changed: false`; a restore reports `changed: true`.
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
short_description: Roll changed files back on a timer unless the change is confirmed
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
  timeout:
    description: Seconds until the watcher restores an unconfirmed guard (state armed).
    type: int
    default: 120
  guard:
    description: The guard directory `armed` returned (states confirmed and restored).
    type: path
  base_dir:
    type: path
    default: /var/lib/cityguard/guards
"""

# Shared by the module and the watcher (run as `python3 -c`, so it cannot import this file).
RESTORE = r'''
import json, os, shutil

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

def restore(guard):
    with open(os.path.join(guard, "manifest.json")) as stream:
        manifest = json.load(stream)
    for index, entry in enumerate(manifest["paths"]):
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
'''

WATCHER = RESTORE + r'''
import sys, time
guard, deadline = sys.argv[1], float(sys.argv[2])
while time.time() < deadline:
    time.sleep(min(1.0, max(deadline - time.time(), 0.01)))
    if not os.path.isdir(guard) or os.path.exists(os.path.join(guard, "confirmed")):
        sys.exit(0)
restore(guard)
with open(os.path.join(guard, "rolled-back"), "w") as stream:
    stream.write(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
'''


def restore(guard: str) -> None:
    namespace: dict = {}
    exec(RESTORE, namespace)  # one implementation for the module and the watcher
    namespace["restore"](guard)


def arm(paths: list[str], timeout: int, base_dir: str) -> dict:
    os.makedirs(base_dir, mode=0o700, exist_ok=True)
    guard = os.path.join(base_dir, uuid.uuid4().hex)
    os.makedirs(os.path.join(guard, "data"), mode=0o700)
    entries = []
    for index, path in enumerate(paths):
        saved = os.path.join(guard, "data", str(index))
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.copytree(path, saved, symlinks=True)
            kind = "dir"
        elif os.path.lexists(path):
            shutil.copy2(path, saved, follow_symlinks=False)
            kind = "file"
        else:
            kind = "absent"
        entries.append({"path": path, "kind": kind})
    deadline = time.time() + timeout
    with open(os.path.join(guard, "manifest.json"), "w") as stream:
        json.dump({"paths": entries, "deadline": deadline}, stream)
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, guard, str(deadline)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, cwd="/",
    )
    with open(os.path.join(guard, "watcher.pid"), "w") as stream:
        stream.write(str(watcher.pid))
    return {"guard": guard, "deadline": int(deadline), "watcher": watcher.pid}


def stop_watcher(guard: str) -> None:
    try:
        with open(os.path.join(guard, "watcher.pid")) as stream:
            os.kill(int(stream.read().strip()), signal.SIGTERM)
    except (OSError, ValueError):
        pass  # already gone: it found the confirmation, or rolled back


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["armed", "confirmed", "restored"],
                      "required": True},
            "paths": {"type": "list", "elements": "path", "default": []},
            "timeout": {"type": "int", "default": 120},
            "guard": {"type": "path"},
            "base_dir": {"type": "path", "default": "/var/lib/cityguard/guards"},
        },
        required_if=[("state", "confirmed", ["guard"]), ("state", "restored", ["guard"])],
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode:
        module.exit_json(changed=False, guard="")
    if params["state"] == "armed":
        module.exit_json(changed=False, **arm(params["paths"], params["timeout"],
                                              params["base_dir"]))
    guard = params["guard"]
    if not guard or not os.path.isdir(guard):
        module.exit_json(changed=False, msg="no such guard (already confirmed or rolled back)")
    if params["state"] == "confirmed":
        with open(os.path.join(guard, "confirmed"), "w"):
            pass
        stop_watcher(guard)
        shutil.rmtree(guard, ignore_errors=True)
        module.exit_json(changed=False)
    stop_watcher(guard)
    if os.path.exists(os.path.join(guard, "rolled-back")):
        module.exit_json(changed=True, msg="the watcher had already rolled back")
    restore(guard)
    with open(os.path.join(guard, "rolled-back"), "w") as stream:
        stream.write(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
