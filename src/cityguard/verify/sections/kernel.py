"""Facts for the kernel area: module configuration, core dump limits, mounts, inventory names.

The sysctl values themselves come from the core sections (`facts.sysctl_runtime`,
`facts.sysctl_persisted`). This module adds, in the same SSH round trip:

- ``kernel-modprobe``: the install/blacklist lines modprobe resolves from every modprobe.d;
- ``kernel-loaded-modules``: /proc/modules (absent in a lab container);
- ``kernel-limits``: pam_limits' files, in the order pam_limits reads them;
- ``kernel-coredump``: systemd-coredump's configuration with its drop-ins;
- ``kernel-mounts``: the mount table, /etc/fstab and the systemd mount units of the
  world-writable directories.

It also holds the few pure helpers the kernel-area checks share (expected values that depend on
the inventory, the boot-time options of a mount, the effective resource limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityguard.config import content_root
from cityguard.verify.expectations import Expect
from cityguard.verify.facts import HostFacts, SectionError, register_section
from cityguard.verify.sections._common import read_control_parameters, systemd_settings

# ------------------------------------------------------------------------- catalog defaults


def catalog_parameters(check_file: str, control_file: str) -> dict[str, dict[str, Any]]:
    """Control id -> default parameters, read from policies/controls/<control_file>.

    Checks are parametrized per key, module or option at collection time, before any host or
    site is known; the catalog next to the checks is the one list of those keys. The values a
    check expects still come from the run's resolved parameters (the `param` fixture).
    """
    path = Path(check_file).resolve().parent.parent / "policies" / "controls" / control_file
    if not path.is_file():  # the checks were copied away from their content directory
        path = content_root() / "policies" / "controls" / control_file
    return read_control_parameters(path)


# ------------------------------------------------------------------------- inventory names


def inventory_names(hosts_spec: str | None) -> set[str]:
    """The names a host answers to in the inventory: its groups, its own name, and 'all'.

    Parameters such as router_groups and hosts_using_slaac list such names; the roles compute
    the same set from `group_names + [inventory_hostname, 'all']`. Raises SectionError when
    the host is not reached through an Ansible inventory (its groups are then unknown).
    """
    import testinfra

    backend = testinfra.get_host(hosts_spec or "local://").backend
    get_variables = getattr(backend, "get_variables", None)
    if get_variables is None:
        raise SectionError("the host's inventory groups are unknown: it is not an ansible:// host")
    variables = get_variables()
    groups = set(variables.get("group_names") or [])
    return {*groups, str(variables.get("inventory_hostname")), "all"}


# ------------------------------------------------------------------------- sysctl runtime


def runtime_not_held(container: str | None, key: str, runtime: dict[str, str]) -> str | None:
    """Why a container cannot hold the runtime value of a sysctl key; None when it can.

    net.* keys belong to the container's own network namespace, except the few that exist only
    in the machine's initial namespace (absent from the container's `sysctl -a`); all other
    keys are global to the machine. On a real server (container None) every key is checked.
    """
    if not container:
        return None
    if not key.startswith("net."):
        return (
            f"{key.split('.')[0]}.* sysctls are global: a {container} container sees the "
            "machine's value and cannot set it; the persisted value is checked instead"
        )
    if key not in runtime:
        return (
            f"{key} exists only in the machine's initial network namespace, not in the "
            f"{container} container's own; the persisted value is checked instead"
        )
    return None


def expect_sysctl_runtime(facts: HostFacts, expect: Expect, key: str, wanted: str) -> None:
    """The key's value now equals `wanted`, or not-applicable where a container cannot hold it."""
    reason = runtime_not_held(facts.container, key, facts.sysctl_runtime)
    if reason:
        expect.not_applicable(reason)
    expect.equal(facts.sysctl_runtime.get(key), wanted, key)


def sysctl_persisted(facts: HostFacts, key: str) -> tuple[str | None, str]:
    """(value, file) the host boots with; (None, 'no file') when no file sets the key."""
    return facts.sysctl_persisted.get(key, (None, "no file"))


def expect_sysctl_persisted(facts: HostFacts, expect: Expect, key: str, wanted: str) -> None:
    """The value systemd-sysctl applies at boot (precedence resolved) equals `wanted`."""
    value, source = sysctl_persisted(facts, key)
    expect.equal(value, wanted, f"{key} in {source}")


# ------------------------------------------------------------------------- modprobe


@dataclass(frozen=True)
class ModprobeConfig:
    """What modprobe resolved from its configuration directories (names with underscores)."""

    install: dict[str, str] = field(default_factory=dict)
    blacklist: frozenset[str] = frozenset()

    def install_command(self, module: str) -> str | None:
        return self.install.get(module_name(module))

    def blacklisted(self, module: str) -> bool:
        return module_name(module) in self.blacklist


def module_name(module: str) -> str:
    """modprobe treats - and _ alike in module names and reports them with _."""
    return module.replace("-", "_")


MODPROBE_COMMAND = (
    "command -v modprobe >/dev/null 2>&1 || { echo @@error; echo modprobe not found; exit 0; }; "
    "out=$(modprobe --showconfig 2>&1) || { echo @@error; printf '%s\\n' \"$out\" | head -3; "
    "exit 0; }; printf '%s\\n' \"$out\" | grep -E '^(install|blacklist) ' || true"
)


def parse_modprobe(lines: list[str]) -> ModprobeConfig:
    """`modprobe --showconfig` lines; the first install command of a module is the one used."""
    install: dict[str, str] = {}
    blacklist: set[str] = set()
    for line in lines:
        words = line.split(None, 2)
        if len(words) >= 2 and words[0] == "blacklist":
            blacklist.add(module_name(words[1]))
        elif len(words) == 3 and words[0] == "install":
            install.setdefault(module_name(words[1]), words[2].strip())
    return ModprobeConfig(install, frozenset(blacklist))


# ------------------------------------------------------------------------- loaded modules

NO_PROC_MODULES = "@@no-proc-modules"
LOADED_MODULES_COMMAND = f"cat /proc/modules 2>/dev/null || echo '{NO_PROC_MODULES}'"


def parse_loaded_modules(lines: list[str]) -> dict[str, int] | None:
    """Module name -> reference count from /proc/modules; None when the file is absent."""
    if any(line.strip() == NO_PROC_MODULES for line in lines):
        return None
    loaded: dict[str, int] = {}
    for line in lines:
        words = line.split()
        if len(words) >= 3:
            loaded[words[0]] = int(words[2]) if words[2].isdigit() else 0
    return loaded


# ------------------------------------------------------------------------- pam_limits

# pam_limits reads limits.conf first, then limits.d/*.conf in name order (the shell glob order)
LIMITS_COMMAND = (
    "grep -H '' /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null || true"
)


@dataclass(frozen=True)
class LimitEntry:
    file: str
    domain: str
    kind: str  # soft, hard or - (both)
    item: str
    value: str


def parse_limits(lines: list[str]) -> list[LimitEntry]:
    entries = []
    for line in lines:
        path, sep, content = line.partition(":")
        words = content.split("#", 1)[0].split()
        if sep and len(words) == 4:
            entries.append(LimitEntry(path, *words))
    return entries


def effective_limit(
    entries: list[LimitEntry], domain: str, item: str, kind: str
) -> LimitEntry | None:
    """The entry pam_limits applies for `domain`: of equally specific entries, the last read."""
    matching = [
        e for e in entries if e.domain == domain and e.item == item and e.kind in (kind, "-")
    ]
    return matching[-1] if matching else None


# ------------------------------------------------------------------------- systemd-coredump

COREDUMP_COMMAND = (
    "command -v systemd-analyze >/dev/null 2>&1 || "
    "{ echo @@error; echo systemd-analyze not found; exit 0; }; "
    "systemd-analyze cat-config systemd/coredump.conf 2>&1"
)


def parse_coredump(lines: list[str]) -> dict[str, tuple[str, str]]:
    """Key -> (value, file) of [Coredump], from `systemd-analyze cat-config` (last one wins)."""
    return systemd_settings(lines, "Coredump")


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


register_section("kernel-modprobe", MODPROBE_COMMAND, parse_modprobe)
register_section("kernel-loaded-modules", LOADED_MODULES_COMMAND, parse_loaded_modules)
register_section("kernel-limits", LIMITS_COMMAND, parse_limits)
register_section("kernel-coredump", COREDUMP_COMMAND, parse_coredump)
register_section("kernel-mounts", MOUNTS_COMMAND, parse_mounts)
