"""Mount options of the world-writable directories (/tmp, /dev/shm, /var/tmp), as the
``kernel-mounts`` fact section (the mount table, /etc/fstab and the systemd mount units), with
the rules that resolve which options a mount has now and gets at boot. Its own module because
systemd's unit precedence and mount(8)'s option semantics are a job of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cityguard.verify.facts import register_section

# ------------------------------------------------------------------------- mounts

MOUNT_POINTS = ("/tmp", "/dev/shm", "/var/tmp")
# systemd's unit directories, highest precedence first; /etc/fstab ranks between /run and
# /usr/local/lib (systemd-fstab-generator writes to /run/systemd/generator)
UNIT_DIRS_BEFORE_FSTAB = ("/etc/systemd/system", "/run/systemd/system")
UNIT_DIRS_AFTER_FSTAB = (
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
UNIT_DIRS = UNIT_DIRS_BEFORE_FSTAB + UNIT_DIRS_AFTER_FSTAB
FSTAB = "/etc/fstab"
NOT_SEPARATE = "not a separate mount"


def unit_name(mount_point: str) -> str:
    """systemd's unit name for a mount point, as `systemd-escape --path --suffix=mount`."""
    escaped = mount_point.strip("/").replace("-", "\\x2d").replace("/", "-")
    return f"{escaped or '-'}.mount"


def _mounts_command() -> str:
    units = " ".join(unit_name(p) for p in MOUNT_POINTS)
    dirs = " ".join(UNIT_DIRS[:-1])
    return (
        "findmnt -rn -o TARGET,FSTYPE,OPTIONS || { echo @@error; echo findmnt failed; exit 0; }; "
        f"echo @@fstab; cat {FSTAB} 2>/dev/null; echo @@units; "
        # on merged-/usr systems /lib is a link to /usr/lib: read it once
        f"dirs='{dirs}'; [ -L /lib ] || dirs=\"$dirs {UNIT_DIRS[-1]}\"; "
        f"for d in $dirs; do for u in {units}; do "
        '[ -f "$d/$u" ] && grep -H "" "$d/$u"; '
        'for f in "$d/$u.d"/*.conf; do [ -f "$f" ] && grep -H "" "$f"; done; '
        "done; done; true"
    )


MOUNTS_COMMAND = _mounts_command()


@dataclass(frozen=True)
class MountFacts:
    mounted: dict[str, tuple[str, str]]  # target -> (fstype, options), the last mount wins
    fstab: dict[str, tuple[str, str]]  # mount point -> (fstype, options), the last entry wins
    unit_files: dict[str, list[str]]  # path -> lines, for the watched mount units


def _unescape(text: str) -> str:
    """findmnt -r and fstab escape spaces and the like as \\x20 / \\040."""
    text = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mounts(lines: list[str]) -> MountFacts:
    mounted: dict[str, tuple[str, str]] = {}
    fstab: dict[str, tuple[str, str]] = {}
    unit_files: dict[str, list[str]] = {}
    part = "mounted"
    for line in lines:
        if line in ("@@fstab", "@@units"):
            part = line[2:]
            continue
        if part == "mounted":
            words = line.split()
            if len(words) >= 3:
                mounted[_unescape(words[0])] = (words[1], words[2])
        elif part == "fstab":
            words = line.split("#", 1)[0].split()
            if len(words) >= 3:
                options = words[3] if len(words) >= 4 else "defaults"
                fstab[_unescape(words[1]).rstrip("/") or "/"] = (words[2], options)
        else:
            path, sep, content = line.partition(":")
            if sep:
                unit_files.setdefault(path, []).append(content)
    return MountFacts(mounted, fstab, unit_files)


def _unit_options(lines: list[str]) -> str | None:
    """The last Options= of the [Mount] section, None if the file sets none."""
    section, options = "", None
    for raw in lines:
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Mount" and line.startswith("Options="):
            options = line.partition("=")[2].strip()
    return options


def boot_options(facts: MountFacts, mount_point: str) -> tuple[str, str] | None:
    """The options the mount gets at boot and the file that sets them; None if nothing does.

    The unit file is the first found in systemd's precedence order, with /etc/fstab ranking
    between /run and /usr/local/lib; drop-ins (<unit>.d/*.conf, a name in a higher directory
    hiding the same name in a lower one) apply in name order, a later Options= replacing.
    """
    unit = unit_name(mount_point)
    options = ""
    source = ""
    for directory in (*UNIT_DIRS_BEFORE_FSTAB, FSTAB, *UNIT_DIRS_AFTER_FSTAB):
        if directory == FSTAB:
            if mount_point in facts.fstab:
                options, source = facts.fstab[mount_point][1], FSTAB
                break
            continue
        path = f"{directory}/{unit}"
        if path in facts.unit_files:
            options, source = (_unit_options(facts.unit_files[path]) or "defaults"), path
            break
    if not source:
        return None
    drop_ins: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):
        prefix = f"{directory}/{unit}.d/"
        for path in facts.unit_files:
            if path.startswith(prefix) and path.endswith(".conf"):
                drop_ins[path[len(prefix) :]] = path
    for name in sorted(drop_ins):
        value = _unit_options(facts.unit_files[drop_ins[name]])
        if value is not None:
            options, source = value, drop_ins[name]
    return options, source


# option -> (flags it sets, flags it clears), as mount(8) reads an option list left to right
_OPTION_EFFECTS: dict[str, tuple[set[str], set[str]]] = {
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


def option_flags(options: str) -> set[str]:
    """Which of nodev, nosuid, noexec are in effect for a comma-separated option list."""
    flags: set[str] = set()
    for option in options.split(","):
        sets, clears = _OPTION_EFFECTS.get(option.strip(), (set(), set()))
        flags = (flags - clears) | sets
    return flags


def mount_option_state(facts: MountFacts, mount_point: str, option: str) -> str:
    """What the mount table says about one option: the option, NOT_SEPARATE, or what is there."""
    entry = facts.mounted.get(mount_point)
    if entry is None:
        return NOT_SEPARATE
    return option if option in option_flags(entry[1]) else f"without {option}: {entry[1]}"


def boot_option_state(facts: MountFacts, mount_point: str, option: str) -> tuple[str, str]:
    """(state, source) of one option at boot; state as in mount_option_state."""
    boot = boot_options(facts, mount_point)
    if boot is None:
        if mount_point in facts.mounted:
            return "mounted, but no fstab entry or mount unit sets its options", "nothing"
        return NOT_SEPARATE, "nothing"
    options, source = boot
    state = option if option in option_flags(options) else f"without {option}: {options}"
    return state, source


register_section("kernel-mounts", MOUNTS_COMMAND, parse_mounts)
