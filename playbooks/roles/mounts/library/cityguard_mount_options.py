#!/usr/bin/python
"""Ansible module: make directories' separate mounts carry some options, now and at boot.

At boot, a mount is set up by the first of, in systemd's precedence: a unit file in
/etc/systemd/system or /run/systemd/system, the /etc/fstab line, a unit file in the vendor
directories; drop-ins (<unit>.d/*.conf) apply on top in name order. The module adds the options
where that setting lives:

- a unit file: a drop-in of its own with the unit's options plus the missing ones;
- an fstab line: the missing options appended to its option field (contrary ones removed);
- nothing, but a tmpfs is mounted there (systemd's /dev/shm, a container's /tmp): a new
  fstab line for that tmpfs.

Now: the mounted filesystem is remounted with the missing options. A directory that is not a
separate mount is left alone (its options are those of the filesystem holding it). Check mode
reports what would change, with a diff.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cityguard_host import in_container
from ansible.module_utils.cityguard_mount_rules import (
    UNIT_DIRS,
    UNIT_DIRS_AFTER_FSTAB,
    UNIT_DIRS_BEFORE_FSTAB,
    option_flags,
    unescape,
    unit_name,
    unit_options,
)

DOCUMENTATION = r"""
module: cityguard_mount_options
short_description: Ensure a separate mount carries options now and at boot
options:
  paths: {description: control id -> the mount point it names, type: dict, required: true}
  options:
    description: flag options to ensure, e.g. nodev
    type: list
    elements: str
    required: true
  fstab: {description: the fstab file, type: path, default: /etc/fstab}
  dropin_name: {description: file name of the drop-in for a mount unit, type: str, required: true}
"""

CONTRARY = {"nodev": "dev", "nosuid": "suid", "noexec": "exec"}


def escape(text: str) -> str:
    return re.sub(r"[\s\\]", lambda m: f"\\{ord(m.group(0)):03o}", text)


def read_lines(path: str) -> list[str] | None:
    try:
        with open(path) as stream:
            return stream.read().splitlines()
    except FileNotFoundError:
        return None


def mounted(path: str) -> tuple[str, str] | None:
    """(fstype, options) of the mount on `path` (the last one, which is visible), or None."""
    found = None
    for line in read_lines("/proc/self/mounts") or []:
        fields = line.split()
        if len(fields) >= 4 and unescape(fields[1]) == path:
            found = (fields[2], fields[3])
    return found


def with_options(options: str, required: list[str]) -> str:
    """`options` with contrary flags removed and the missing required ones appended."""
    contrary = {CONTRARY[r] for r in required if r in CONTRARY}
    words = [w for w in options.split(",") if w and w not in contrary]
    flags = option_flags(",".join(words))
    return ",".join(words + [r for r in required if r not in flags])


def fstab_index(lines: list[str], path: str) -> int | None:
    found = None
    for index, line in enumerate(lines):
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 3 and (unescape(fields[1]).rstrip("/") or "/") == path:
            found = index
    return found


def fstab_line_with(line: str, required: list[str]) -> str:
    """The fstab line with the required options in its fourth field, spacing kept."""
    parts = re.split(r"(\s+)", line.strip())
    fields = parts[0::2]
    if len(fields) < 4:
        return "\t".join([*fields[:3], with_options("defaults", required), "0", "0"])
    parts[6] = with_options(fields[3], required)
    return "".join(parts)


def other_dropins(unit: str, ours: str) -> list[str]:
    """Paths of the unit's drop-ins other than ours, in the order systemd applies them."""
    by_name: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):
        folder = f"{directory}/{unit}.d"
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.endswith(".conf") and name != ours:
                    by_name[name] = f"{folder}/{name}"
    return [by_name[name] for name in sorted(by_name)]


def write(module: AnsibleModule, path: str, text: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.cityguard")
    with open(temporary, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    module.atomic_move(temporary, path)


def ensure(module: AnsibleModule, path: str) -> dict[str, object]:
    """Bring one mount point's options in line, now and at boot; returns its result."""
    path = path.rstrip("/") or "/"
    required = module.params["options"]
    fstab = module.params["fstab"]
    unit = unit_name(path)
    fstab_lines = read_lines(fstab) or []
    in_fstab = fstab_index(fstab_lines, path)
    current = mounted(path)

    fragment = next((f"{d}/{unit}" for d in UNIT_DIRS_BEFORE_FSTAB
                     if os.path.isfile(f"{d}/{unit}")), None)
    if fragment is None and in_fstab is None:
        fragment = next((f"{d}/{unit}" for d in UNIT_DIRS_AFTER_FSTAB
                         if os.path.isfile(f"{d}/{unit}")), None)

    result: dict[str, object] = {"changed": False, "path": path, "unit": unit}
    before_text, after_text, target = "", "", ""
    if fragment is not None:
        base = unit_options(read_lines(fragment) or []) or ""
        for dropin in other_dropins(unit, module.params["dropin_name"]):
            base = unit_options(read_lines(dropin) or []) or base
        target = f"/etc/systemd/system/{unit}.d/{module.params['dropin_name']}"
        after_text = (
            "# Managed by cityguard (role mounts). Edits here are reverted by the next\n"
            "# `cityguard harden`.\n"
            f"[Mount]\nOptions={with_options(base, required)}\n"
        )
        before_text = "\n".join(read_lines(target) or []) + ("\n" if os.path.exists(target) else "")
        result["boot"] = f"drop-in for {fragment}"
    elif in_fstab is not None or (current is not None and current[0] == "tmpfs"):
        lines = list(fstab_lines)
        if in_fstab is None:
            line = f"tmpfs\t{escape(path)}\ttmpfs\t{with_options('defaults', required)}\t0\t0"
            lines.append(line)
        else:
            lines[in_fstab] = fstab_line_with(lines[in_fstab], required)
        target = fstab
        before_text = "".join(f"{ln}\n" for ln in fstab_lines)
        after_text = "".join(f"{ln}\n" for ln in lines)
        result["boot"] = fstab
    elif current is not None:
        module.warn(f"{path} is a {current[0]} mounted by nothing cityguard can configure: "
                    "its options are set now but not for the next boot")
        result["boot"] = "unknown"
    else:
        result["boot"] = "not a separate mount"

    diff_before, diff_after = "", ""
    if target and before_text != after_text:
        result["changed"] = True
        diff_before, diff_after = f"{target}:\n{before_text}", f"{target}:\n{after_text}"
        if not module.check_mode:
            write(module, target, after_text)
            if os.path.isdir("/run/systemd/system"):
                module.run_command(["systemctl", "daemon-reload"], check_rc=True)

    if current is not None:
        missing = [r for r in required if r not in option_flags(current[1])]
        if missing:
            result["changed"] = True
            result["remounted"] = missing
            diff_before += f"mounted {path}: {current[1]}\n"
            diff_after += f"mounted {path}: {with_options(current[1], required)}\n"
            if not module.check_mode:
                rc, _, err = module.run_command(
                    ["mount", "-o", "remount," + ",".join(missing), path])
                if rc != 0:
                    message = f"remounting {path} with {','.join(missing)} failed: {err.strip()}"
                    if not in_container():
                        module.fail_json(msg=message, **result)
                    # a container may not own the mount: it is reported, and the check fails
                    module.warn(message)
    result["diff"] = {"before": diff_before, "after": diff_after,
                      "before_header": path, "after_header": path}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "dict", "required": True},
            "options": {"type": "list", "elements": "str", "required": True},
            "fstab": {"type": "path", "default": "/etc/fstab"},
            "dropin_name": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    # control id -> mount point; one after the other, as each may edit the same fstab
    results = {control: ensure(module, path) for control, path in sorted(module.params["paths"].items())}
    changed = sorted(control for control, result in results.items() if result["changed"])
    module.exit_json(
        changed=bool(changed),
        mounts={r["path"]: {k: v for k, v in r.items() if k != "diff"} for r in results.values()},
        diff=[results[control]["diff"] for control in changed],
        cityguard_changed_controls=changed,
    )


if __name__ == "__main__":
    main()
