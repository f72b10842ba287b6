"""Mount options of the world-writable directories (/tmp, /dev/shm, /var/tmp), as the
``kernel-mounts`` fact section (the mount table, /etc/fstab and the systemd mount units), with
the rules that resolve which options a mount has now and gets at boot. systemd's unit
precedence and mount(8)'s option semantics come from cityguard.hostside, the code the mounts
role's module runs on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityguard.hostside.cityguard_mount_rules import (
    UNIT_DIRS,
    UNIT_DIRS_AFTER_FSTAB,
    UNIT_DIRS_BEFORE_FSTAB,
    option_flags,
    unescape,
    unit_name,
    unit_options,
)
from cityguard.verify.facts import register_section

# ------------------------------------------------------------------------- mounts

MOUNT_POINTS = ("/tmp", "/dev/shm", "/var/tmp")
FSTAB = "/etc/fstab"
NOT_SEPARATE = "not a separate mount"


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
                mounted[unescape(words[0])] = (words[1], words[2])
        elif part == "fstab":
            words = line.split("#", 1)[0].split()
            if len(words) >= 3:
                options = words[3] if len(words) >= 4 else "defaults"
                fstab[unescape(words[1]).rstrip("/") or "/"] = (words[2], options)
        else:
            path, sep, content = line.partition(":")
            if sep:
                unit_files.setdefault(path, []).append(content)
    return MountFacts(mounted, fstab, unit_files)


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
            options, source = (unit_options(facts.unit_files[path]) or "defaults"), path
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
        value = unit_options(facts.unit_files[drop_ins[name]])
        if value is not None:
            options, source = value, drop_ins[name]
    return options, source


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
