#!/usr/bin/python
"""Ansible module: bring a set of files to their wanted content, owner and mode in one run.

Each `template` or `copy` task costs a round trip to the host even when nothing differs, and a
hardening area writes several files: one call per area keeps a compliant run fast while still
reading every file, so drift is repaired on every run. Content is rendered on the controller
(the template lookup) and compared byte for byte here.

All or nothing: every new content is written to a temporary file beside its target and
validated (`validate`, e.g. `visudo -cf %s`) before the first target is replaced, so a bad
file leaves the host as it was. Missing parent directories are created root-owned, 0755.
With `backup`, the replaced file is kept beside it and its name returned (`backups`), for a
caller that may have to roll the change back. Each entry may name the `control` it enforces;
the result lists the controls whose files changed (`cityguard_changed_controls`), so changes
are reported against the right control.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_files
short_description: Set the content, owner and mode of several files in one module run
options:
  files:
    description: The files, each with path (or paths), content (or state absent), owner,
      group, mode, and optionally control (for reporting), validate (a command with %s) and
      backup.
    type: list
    elements: dict
    required: true
"""

ENTRY_SPEC = {
    "path": {"type": "path"},
    "paths": {"type": "list", "elements": "path"},  # several files with the same content
    "content": {"type": "str"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
    "mode": {"type": "str", "default": "0644"},
    "control": {"type": "str"},
    "validate": {"type": "str"},
    "backup": {"type": "bool", "default": False},  # keep the replaced file, for a rollback
    # a `key = value` file serving several controls: key -> its controls, so each changed key
    # is reported against its own controls (cityguard_changes), not the file against all
    "key_controls": {"type": "dict"},
}


def _key_values(text: bytes | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in (text or b"").decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        if eq:
            values[key.strip()] = " ".join(value.split())
    return values


def key_changes(plan: "Plan") -> list[dict]:
    """One change per key whose value differs and control it serves, with its one-line diff."""
    mapping = plan.entry.get("key_controls") or {}
    before, after = _key_values(plan.current), _key_values(plan.wanted)
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        diff = {"before_header": plan.path, "after_header": plan.path,
                "before": f"{key} = {before[key]}\n" if key in before else "",
                "after": f"{key} = {after[key]}\n" if key in after else ""}
        for control in mapping.get(key) or [plan.entry.get("control")]:
            if control:
                changes.append({"control": control, "what": f"{plan.path}: {key}", "diff": diff})
    return changes


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def _attributes(path: str) -> tuple[int, int, int] | None:
    """Owner, group and mode of the file (a symbolic link's target, as chown/chmod set them)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def _describe(attributes: tuple[int, int, int] | None) -> str:
    if attributes is None:
        return "(absent)\n"
    uid, gid, mode = attributes
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return f"owner {owner}, group {group}, mode {mode:04o}\n"


def _make_directories(directory: str) -> None:
    """Create the missing directories of the path 0755 (makedirs' mode is cut by the umask)."""
    if not directory or os.path.isdir(directory):
        return
    _make_directories(os.path.dirname(directory))
    os.mkdir(directory)
    os.chmod(directory, 0o755)


class Plan:
    """What one entry needs; computed before anything is written."""

    def __init__(self, module: AnsibleModule, entry: dict) -> None:
        self.entry = entry
        self.path = entry["path"]
        self.state = entry["state"]
        self.current = _read(self.path)
        self.current_attributes = _attributes(self.path)
        self.wanted = None
        self.wanted_attributes = None
        self.temporary: str | None = None
        self.backup: str | None = None
        if self.state == "absent":
            return
        if entry.get("content") is None:
            module.fail_json(msg=f"{self.path}: content is required unless state is absent")
        self.wanted = entry["content"].encode("utf-8")
        try:
            uid = pwd.getpwnam(entry["owner"]).pw_uid
            gid = grp.getgrnam(entry["group"]).gr_gid
        except KeyError as exc:
            module.fail_json(msg=f"{self.path}: no such user or group {exc}")
        try:
            mode = int(entry["mode"], 8)
        except ValueError:
            module.fail_json(msg=f"{self.path}: mode {entry['mode']!r} is not an octal number")
        self.wanted_attributes = (uid, gid, mode)

    @property
    def content_changes(self) -> bool:
        return self.current != self.wanted

    @property
    def changes(self) -> bool:
        if self.state == "absent":
            return self.current_attributes is not None
        return self.content_changes or self.current_attributes != self.wanted_attributes

    def diff(self) -> dict:
        before = "" if self.current is None else self.current.decode("utf-8", "replace")
        after = "" if self.wanted is None else self.wanted.decode("utf-8", "replace")
        if before == after:  # owner or mode only
            before = _describe(self.current_attributes)
            after = _describe(self.wanted_attributes)
        return {"before_header": self.path, "after_header": self.path,
                "before": before, "after": after}

    def stage(self, module: AnsibleModule) -> None:
        """Write the new content beside the target and validate it; the target is untouched."""
        if self.state == "absent" or not self.content_changes:
            return
        directory = os.path.dirname(self.path)
        _make_directories(directory)
        handle, self.temporary = tempfile.mkstemp(prefix=".cityguard-", dir=directory)
        with os.fdopen(handle, "wb") as stream:
            stream.write(self.wanted)
        self._apply_attributes(self.temporary)
        command = self.entry.get("validate")
        if command:
            result = subprocess.run(
                command.replace("%s", self.temporary), shell=True, capture_output=True,
                text=True, check=False,
            )
            if result.returncode != 0:
                reason = " ".join((result.stderr or result.stdout).split())  # one line
                raise ValueError(f"{self.path}: `{command}` refused the new content: {reason}")

    def commit(self) -> None:
        if self.state == "absent":
            os.unlink(self.path)
        elif self.temporary is not None:
            if self.entry["backup"] and self.current is not None:
                self.backup = f"{self.path}.{time.strftime('%Y%m%dT%H%M%S')}.cityguard~"
                shutil.copy2(self.path, self.backup)
            os.replace(self.temporary, self.path)
            self.temporary = None
        else:
            self._apply_attributes(self.path)

    def discard(self) -> None:
        if self.temporary is not None and os.path.exists(self.temporary):
            os.unlink(self.temporary)

    def _apply_attributes(self, path: str) -> None:
        uid, gid, mode = self.wanted_attributes
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True,
                                 "options": ENTRY_SPEC}},
        supports_check_mode=True,
    )
    entries = [
        {**entry, "path": path}
        for entry in module.params["files"]
        for path in ([entry["path"]] if entry.get("path") else entry.get("paths") or [])
    ]
    plans = [Plan(module, entry) for entry in entries]
    changing = [plan for plan in plans if plan.changes]
    result = {
        "changed": bool(changing),
        "changed_paths": [plan.path for plan in changing],
        "cityguard_changed_controls": sorted(
            {plan.entry["control"] for plan in changing if plan.entry.get("control")}
        ),
    }
    itemized = [plan for plan in changing if plan.entry.get("key_controls")]
    if itemized:
        result["cityguard_changes"] = [c for plan in itemized for c in key_changes(plan)]
        result["cityguard_changed_controls"] = sorted(
            set(result["cityguard_changed_controls"])
            | {c["control"] for c in result["cityguard_changes"]}
        )
    if module._diff:
        result["diff"] = [plan.diff() for plan in changing]
    if module.check_mode or not changing:
        module.exit_json(**result)
    try:
        for plan in changing:
            plan.stage(module)
    except (OSError, ValueError) as exc:
        for plan in changing:
            plan.discard()
        module.fail_json(msg=f"nothing changed: {exc}")
    for plan in changing:
        plan.commit()
    result["backups"] = {plan.path: plan.backup for plan in changing if plan.backup}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
