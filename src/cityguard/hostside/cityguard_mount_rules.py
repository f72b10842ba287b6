"""How systemd and mount(8) decide a mount's options: which file sets them at boot, and which
of nodev, nosuid and noexec an option list leaves in effect.

Shared by the mounts role's module (which adds options) and the kernel-mounts check section
(which verifies them), so the two can never disagree.
"""

from __future__ import annotations

import re

# systemd's unit directories, highest precedence first; /etc/fstab ranks between /run and
# /usr/local/lib (systemd-fstab-generator writes to /run/systemd/generator)
UNIT_DIRS_BEFORE_FSTAB = ("/etc/systemd/system", "/run/systemd/system")
UNIT_DIRS_AFTER_FSTAB = (
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
UNIT_DIRS = UNIT_DIRS_BEFORE_FSTAB + UNIT_DIRS_AFTER_FSTAB

# option -> (flags it sets, flags it clears), as mount(8) reads an option list left to right
OPTION_EFFECTS: dict[str, tuple[set[str], set[str]]] = {
    "nodev": ({"nodev"}, set()),
    "nosuid": ({"nosuid"}, set()),
    "noexec": ({"noexec"}, set()),
    "dev": (set(), {"nodev"}),
    "suid": (set(), {"nosuid"}),
    "exec": (set(), {"noexec"}),
    "defaults": (set(), {"nodev", "nosuid", "noexec"}),
    "user": ({"nodev", "nosuid", "noexec"}, set()),
    "users": ({"nodev", "nosuid", "noexec"}, set()),
    "owner": ({"nodev", "nosuid"}, set()),
    "group": ({"nodev", "nosuid"}, set()),
}


def unit_name(mount_point: str) -> str:
    """systemd's unit name for a mount point, as `systemd-escape --path --suffix=mount`."""
    escaped = mount_point.strip("/").replace("-", "\\x2d").replace("/", "-")
    return f"{escaped or '-'}.mount"


def unescape(text: str) -> str:
    """fstab and the mount table escape spaces and the like as \\040; findmnt -r as \\x20."""
    text = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def option_flags(options: str) -> set[str]:
    """Which of nodev, nosuid, noexec are in effect for a comma-separated option list."""
    flags: set[str] = set()
    for option in options.split(","):
        sets, clears = OPTION_EFFECTS.get(option.strip(), (set(), set()))
        flags = (flags - clears) | sets
    return flags


def unit_options(lines: list[str]) -> str | None:
    """The last Options= of a mount unit's [Mount] section; None if the file sets none."""
    section, options = "", None
    for raw in lines:
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Mount" and line.startswith("Options="):
            options = line.partition("=")[2].strip()
    return options
