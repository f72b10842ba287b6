#!/usr/bin/python
"""Ansible module: tighten owner, group and mode of files, and add the sticky bit to
world-writable directories, in one call, with check-mode diffs.

Files are grouped by the control that wants them, so one call serves every control of an area
and the result still says which controls needed a change (`cityguard_changed_controls`).

A mode is a ceiling: bits wider than it are removed and a stricter mode is left as it is, so
the module never loosens a file. The world-writable scan is the same one `cityguard check`
runs: every local disk-like filesystem, each on its own device, /proc /sys /dev /run pruned.
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import stat
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_file_modes
short_description: Tighten owner, group and mode of files; sticky bit on world-writable dirs
options:
  controls:
    description: >-
      control id -> path (a glob is allowed) -> {owner, groups, mode, optional}; mode is the
      widest allowed (octal text), groups the allowed groups (the first is set when the file
      has another), optional lets the path be absent.
    type: dict
    default: {}
  sticky_bit_control:
    description: >-
      The control that wants the sticky bit on every world-writable directory on local
      filesystems; empty for none.
    type: str
    default: ""
  exclude_paths:
    description: Trees the sticky-bit scan leaves alone.
    type: list
    elements: str
    default: []
"""

LOCAL_FS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "jfs", "f2fs", "reiserfs", "vfat",
            "overlay", "tmpfs"}
PSEUDO = ("/proc", "/sys", "/dev", "/run")


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def scan_roots():
    roots = set()
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) >= 3 and fields[2] in LOCAL_FS and not _under(fields[1], PSEUDO):
                roots.add(fields[1].replace("\\040", " "))
    return sorted(roots) or ["/"]


def world_writable_dirs(exclude):
    prune = []
    for path in PSEUDO:
        prune += ["-path", path, "-o"]
    command = ["find", *scan_roots(), "-xdev", "(", *prune[:-1], ")", "-prune", "-o",
               "-type", "d", "-perm", "-0002", "!", "-perm", "-1000", "-print0"]
    found = subprocess.run(command, capture_output=True, check=False).stdout
    paths = [p.decode() for p in found.split(b"\0") if p]
    return sorted(p for p in paths if not _under(p, exclude))


def expand(path, spec):
    matches = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
    existing = [m for m in matches if os.path.lexists(m)]
    if not existing and not spec.get("optional"):
        raise FileNotFoundError(path)
    return existing


def plan(path, spec):
    """(changes, uid, gid, mode) to bring the file within the spec; changes empty if it is."""
    info = os.stat(path)
    owner = pwd.getpwnam(spec["owner"]).pw_uid
    groups = list(spec["groups"])
    current_group = grp.getgrgid(info.st_gid).gr_name if _gid_known(info.st_gid) else None
    group = info.st_gid if current_group in groups else grp.getgrnam(groups[0]).gr_gid
    mode = stat.S_IMODE(info.st_mode)
    wanted_mode = mode & int(str(spec["mode"]), 8)
    changes = []
    if info.st_uid != owner:
        changes.append(f"owner {info.st_uid} -> {spec['owner']}")
    if info.st_gid != group:
        changes.append(f"group {current_group or info.st_gid} -> {groups[0]}")
    if wanted_mode != mode:
        changes.append(f"mode {mode:04o} -> {wanted_mode:04o}")
    return changes, owner, group, wanted_mode


def _gid_known(gid):
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "controls": {"type": "dict", "default": {}},
            "sticky_bit_control": {"type": "str", "default": ""},
            "exclude_paths": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    changed = {}
    changed_controls = set()
    wanted = [
        (control, pattern, spec)
        for control, files in sorted(module.params["controls"].items())
        for pattern, spec in sorted(files.items())
    ]
    for control, pattern, spec in wanted:
        try:
            paths = expand(pattern, spec)
        except FileNotFoundError:
            module.fail_json(msg=f"{pattern} does not exist (and is not optional)")
        for path in paths:
            try:
                changes, uid, gid, mode = plan(path, spec)
            except KeyError as error:
                module.fail_json(msg=f"{path}: unknown user or group {error}")
            if not changes:
                continue
            changed[path] = ", ".join(changes)
            changed_controls.add(control)
            if not module.check_mode:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
    sticky_control = module.params["sticky_bit_control"]
    for path in world_writable_dirs(module.params["exclude_paths"]) if sticky_control else []:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        changed_controls.add(sticky_control)
        changed[path] = f"mode {mode:04o} -> {mode | stat.S_ISVTX:04o} (sticky bit)"
        if not module.check_mode:
            os.chmod(path, mode | stat.S_ISVTX)
    diff = {"before": "", "after": "".join(f"{p}: {c}\n" for p, c in changed.items()),
            "before_header": "file modes", "after_header": "file modes"}
    module.exit_json(changed=bool(changed), changes=changed, diff=diff,
                     cityguard_changed_controls=sorted(changed_controls))


if __name__ == "__main__":
    main()
