"""The kernel area's fact sections, on text as Debian 12 hosts (and lab containers) print it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from cityguard import hostside
from cityguard.config import content_root
from cityguard.verify.expectations import Expect
from cityguard.verify.facts import MARK, HostFacts, SectionError, collect, gather_script
from cityguard.verify.sections import kernel_limits, kernel_modules, kernel_mounts
from cityguard.verify.sections.kernel import (
    catalog_parameters,
    expect_sysctl_persisted,
    expect_sysctl_runtime,
    inventory_names,
    runtime_not_held,
)
from cityguard.verify.sections.kernel_limits import (
    LimitEntry,
    effective_limit,
    parse_coredump,
    parse_limits,
)
from cityguard.verify.sections.kernel_modules import parse_loaded_modules, parse_modprobe
from cityguard.verify.sections.kernel_mounts import (
    FSTAB,
    NOT_SEPARATE,
    boot_option_state,
    boot_options,
    mount_option_state,
    option_flags,
    parse_mounts,
    unit_name,
)

# `modprobe --showconfig | grep -E '^(install|blacklist) '` after cityguard's 00-cityguard.conf
# and a later file that tries another install command: kmod keeps file order and uses the first
MODPROBE = """\
blacklist cramfs
blacklist usb_storage
install cramfs /bin/false
install usb_storage /bin/false
blacklist evbug
install cramfs /bin/true
install sctp /sbin/modprobe --ignore-install sctp && echo loaded
""".splitlines()

# /proc/modules of a Debian 12 server
PROC_MODULES = """\
squashfs 73728 2 - Live 0x0000000000000000
usb_storage 81920 0 - Live 0x0000000000000000
loop 40960 4 - Live 0x0000000000000000
ext4 1007616 1 - Live 0x0000000000000000
""".splitlines()

# `grep -H '' /etc/security/limits.conf /etc/security/limits.d/*.conf`, trimmed
LIMITS = """\
/etc/security/limits.conf:#<domain>      <type>  <item>         <value>
/etc/security/limits.conf:#*               soft    core            0
/etc/security/limits.conf:*               hard    core            unlimited
/etc/security/limits.conf:@faculty        hard    core            100
/etc/security/limits.conf:
/etc/security/limits.conf:# End of file
/etc/security/limits.d/90-dev.conf:*    -    core    1000   # developers asked for it
/etc/security/limits.d/99-zz-cityguard-core.conf:# Managed by cityguard (role core_dumps)
/etc/security/limits.d/99-zz-cityguard-core.conf:*    hard    core    0
/etc/security/limits.d/99-zz-cityguard-core.conf:*    soft    core    0
""".splitlines()

# `systemd-analyze cat-config systemd/coredump.conf` with the package installed
COREDUMP = """\
# /etc/systemd/coredump.conf
#  This file is part of systemd.
#
# See coredump.conf(5) for details.

[Coredump]
#Storage=external
#Compress=yes
Storage=external
ProcessSizeMax=2G

# /etc/systemd/coredump.conf.d/99-zz-cityguard.conf
# Managed by cityguard (role core_dumps, CG-CORE-003). Edits here are reverted by the next
# `cityguard harden`.
[Coredump]
ProcessSizeMax=0
Storage=none
""".splitlines()

# the kernel-mounts section of a lab host after hardening: findmnt -rn, fstab, unit files
MOUNTS = """\
/ overlay rw,relatime,lowerdir=/root/.cache/cityguard/images/debian12/rootfs,uuid=on
/tmp tmpfs rw,nosuid,nodev,noexec,size=2468412k,nr_inodes=409600
/dev tmpfs rw,nosuid,size=4096k,nr_inodes=65536,mode=755
/dev/shm tmpfs rw,nosuid,nodev,size=2468412k,nr_inodes=409600
/srv/city\\x20data ext4 rw,relatime
@@fstab
# UNCONFIGURED FSTAB FOR BASE SYSTEM
tmpfs\t/tmp\ttmpfs\tdefaults,nodev,nosuid,noexec\t0\t0
tmpfs /dev/shm tmpfs defaults,exec 0 0   # someone's
UUID=0b3f /var/tmp/ ext4 nodev,nosuid
@@units
""".splitlines()

TMP_UNIT = """\
/usr/lib/systemd/system/tmp.mount:[Unit]
/usr/lib/systemd/system/tmp.mount:Description=Temporary Directory /tmp
/usr/lib/systemd/system/tmp.mount:[Mount]
/usr/lib/systemd/system/tmp.mount:What=tmpfs
/usr/lib/systemd/system/tmp.mount:Where=/tmp
/usr/lib/systemd/system/tmp.mount:Type=tmpfs
/usr/lib/systemd/system/tmp.mount:Options=mode=1777,strictatime,nosuid,nodev,size=50%%,nr_inodes=1m
""".splitlines()


# ------------------------------------------------------------------------- modprobe


def test_modprobe_first_install_command_wins_and_names_use_underscores() -> None:
    config = parse_modprobe(MODPROBE)
    assert config.install_command("cramfs") == "/bin/false"
    assert config.install_command("usb-storage") == "/bin/false"
    assert config.install_command("sctp") == "/sbin/modprobe --ignore-install sctp && echo loaded"
    assert config.install_command("dccp") is None
    assert config.blacklisted("usb-storage") and config.blacklisted("cramfs")
    assert not config.blacklisted("sctp")


def test_loaded_modules_with_reference_counts() -> None:
    assert parse_loaded_modules(PROC_MODULES) == {
        "squashfs": 2,
        "usb_storage": 0,
        "loop": 4,
        "ext4": 1,
    }


def test_loaded_modules_absent_in_a_container() -> None:
    assert parse_loaded_modules([kernel_modules.NO_PROC_MODULES]) is None
    assert parse_loaded_modules([]) == {}


# ------------------------------------------------------------------------- limits, coredump


def test_limits_keep_file_order_and_drop_comments() -> None:
    entries = parse_limits(LIMITS)
    assert entries[0] == LimitEntry("/etc/security/limits.conf", "*", "hard", "core", "unlimited")
    assert [e.file.rsplit("/", 1)[1] for e in entries] == [
        "limits.conf",
        "limits.conf",
        "90-dev.conf",
        "99-zz-cityguard-core.conf",
        "99-zz-cityguard-core.conf",
    ]


def test_effective_limit_is_the_last_entry_of_the_domain() -> None:
    entries = parse_limits(LIMITS)
    hard = effective_limit(entries, "*", "core", "hard")
    assert hard == LimitEntry(
        "/etc/security/limits.d/99-zz-cityguard-core.conf", "*", "hard", "core", "0"
    )
    # a '-' line sets both soft and hard
    without_ours = [e for e in entries if "cityguard" not in e.file]
    assert effective_limit(without_ours, "*", "core", "hard") == LimitEntry(
        "/etc/security/limits.d/90-dev.conf", "*", "-", "core", "1000"
    )
    assert effective_limit(entries[:0], "*", "core", "hard") is None


def test_coredump_last_value_wins_with_its_file() -> None:
    settings = parse_coredump(COREDUMP)
    dropin = "/etc/systemd/coredump.conf.d/99-zz-cityguard.conf"
    assert settings == {"Storage": ("none", dropin), "ProcessSizeMax": ("0", dropin)}


def test_coredump_without_any_file() -> None:
    assert parse_coredump(["# Main configuration file systemd/coredump.conf not found"]) == {}


# ------------------------------------------------------------------------- mounts


def test_unit_names_are_systemd_escaped() -> None:
    assert unit_name("/tmp") == "tmp.mount"
    assert unit_name("/dev/shm") == "dev-shm.mount"
    assert unit_name("/var/tmp") == "var-tmp.mount"
    assert unit_name("/srv/web-data") == "srv-web\\x2ddata.mount"


def test_mount_table_fstab_and_units_are_split() -> None:
    facts = parse_mounts(MOUNTS + TMP_UNIT)
    assert facts.mounted["/tmp"] == (
        "tmpfs",
        "rw,nosuid,nodev,noexec,size=2468412k,nr_inodes=409600",
    )
    assert "/srv/city data" in facts.mounted
    assert facts.fstab == {
        "/tmp": ("tmpfs", "defaults,nodev,nosuid,noexec"),
        "/dev/shm": ("tmpfs", "defaults,exec"),
        "/var/tmp": ("ext4", "nodev,nosuid"),
    }
    assert len(facts.unit_files["/usr/lib/systemd/system/tmp.mount"]) == 7


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ("rw,nosuid,nodev,noexec,relatime", {"nodev", "nosuid", "noexec"}),
        ("defaults", set()),
        ("noexec,defaults,nodev", {"nodev"}),
        ("user,exec", {"nodev", "nosuid"}),
        ("nodev,nosuid,noexec,dev", {"nosuid", "noexec"}),
        ("", set()),
    ],
)
def test_option_flags_read_left_to_right(options: str, flags: set[str]) -> None:
    assert option_flags(options) == flags


def test_runtime_option_states() -> None:
    facts = parse_mounts(MOUNTS)
    assert mount_option_state(facts, "/tmp", "noexec") == "noexec"
    assert mount_option_state(facts, "/dev/shm", "noexec") == (
        "without noexec: rw,nosuid,nodev,size=2468412k,nr_inodes=409600"
    )
    assert mount_option_state(facts, "/var/tmp", "noexec") == NOT_SEPARATE


def test_fstab_ranks_above_vendor_units_and_below_etc_units() -> None:
    facts = parse_mounts(MOUNTS + TMP_UNIT)
    assert boot_options(facts, "/tmp") == ("defaults,nodev,nosuid,noexec", FSTAB)
    etc_unit = [
        "/etc/systemd/system/tmp.mount:[Mount]",
        "/etc/systemd/system/tmp.mount:Options=mode=1777,nosuid",
    ]
    facts = parse_mounts(MOUNTS + TMP_UNIT + etc_unit)
    assert boot_options(facts, "/tmp") == ("mode=1777,nosuid", "/etc/systemd/system/tmp.mount")


def test_vendor_unit_with_drop_ins_in_name_order() -> None:
    no_fstab = [line for line in MOUNTS if "/tmp\t" not in line]
    dropins = [
        "/etc/systemd/system/tmp.mount.d/99-zz-cityguard.conf:[Mount]",
        "/etc/systemd/system/tmp.mount.d/99-zz-cityguard.conf:Options=mode=1777,nodev,nosuid,noexec",
        "/usr/lib/systemd/system/tmp.mount.d/50-size.conf:[Mount]",
        "/usr/lib/systemd/system/tmp.mount.d/50-size.conf:Options=mode=1777,size=1G",
        # same name in a higher directory hides the vendor one
        "/etc/systemd/system/tmp.mount.d/50-size.conf:[Unit]",
    ]
    facts = parse_mounts(no_fstab + TMP_UNIT)
    assert boot_options(facts, "/tmp") == (
        "mode=1777,strictatime,nosuid,nodev,size=50%%,nr_inodes=1m",
        "/usr/lib/systemd/system/tmp.mount",
    )
    assert boot_option_state(facts, "/tmp", "noexec")[0].startswith("without noexec: ")
    facts = parse_mounts(no_fstab + TMP_UNIT + dropins)
    dropin = "/etc/systemd/system/tmp.mount.d/99-zz-cityguard.conf"
    assert boot_options(facts, "/tmp") == ("mode=1777,nodev,nosuid,noexec", dropin)
    assert boot_option_state(facts, "/tmp", "noexec") == ("noexec", dropin)


def test_boot_state_of_unconfigured_mounts() -> None:
    facts = parse_mounts(["/dev/shm tmpfs rw,nosuid,nodev", "@@fstab", "@@units"])
    assert boot_option_state(facts, "/dev/shm", "nodev") == (
        "mounted, but no fstab entry or mount unit sets its options",
        "nothing",
    )
    assert boot_option_state(facts, "/var/tmp", "nodev") == (NOT_SEPARATE, "nothing")
    assert boot_option_state(parse_mounts(MOUNTS), "/dev/shm", "noexec") == (
        "without noexec: defaults,exec",
        FSTAB,
    )


# ------------------------------------------------------------------------- sysctl helpers


def test_runtime_not_held_only_in_containers() -> None:
    runtime = {"net.ipv4.ip_forward": "0", "kernel.randomize_va_space": "2"}
    assert runtime_not_held(None, "kernel.randomize_va_space", runtime) is None
    assert runtime_not_held(None, "net.core.bpf_jit_harden", runtime) is None
    assert runtime_not_held("systemd-nspawn", "net.ipv4.ip_forward", runtime) is None
    reason = runtime_not_held("systemd-nspawn", "fs.suid_dumpable", runtime)
    assert reason is not None and reason.startswith("fs.* sysctls are global")
    reason = runtime_not_held("systemd-nspawn", "net.core.bpf_jit_harden", runtime)
    assert reason is not None and "initial network namespace" in reason


def test_expect_sysctl_runtime_and_persisted_record_observed_values() -> None:
    facts = HostFacts(
        sysctl_runtime={"net.ipv4.tcp_syncookies": "0"},
        sysctl_persisted={"net.ipv4.tcp_syncookies": ("1", "/etc/sysctl.d/99-zz-cityguard.conf")},
    )
    expect = Expect()
    with pytest.raises(AssertionError, match="observed 0, expected 1"):
        expect_sysctl_runtime(facts, expect, "net.ipv4.tcp_syncookies", "1")
    expect_sysctl_persisted(facts, expect, "net.ipv4.tcp_syncookies", "1")
    assert expect.observed == [
        "net.ipv4.tcp_syncookies: 0",
        "net.ipv4.tcp_syncookies in /etc/sysctl.d/99-zz-cityguard.conf: 1",
    ]
    with pytest.raises(AssertionError, match=r"in no file: observed \(absent\)"):
        expect_sysctl_persisted(facts, expect, "kernel.kptr_restrict", "1")


def test_expect_sysctl_runtime_is_not_applicable_for_global_keys_in_a_container() -> None:
    facts = HostFacts(container="systemd-nspawn", sysctl_runtime={"kernel.kptr_restrict": "0"})
    with pytest.raises(
        pytest.skip.Exception, match=r"not-applicable: kernel\.\* sysctls are global"
    ):
        expect_sysctl_runtime(facts, Expect(), "kernel.kptr_restrict", "1")


# ------------------------------------------------------------------------- catalog, inventory


def test_catalog_parameters_come_from_the_controls_file_next_to_the_checks() -> None:
    check_file = str(content_root() / "checks" / "test_sysctl.py")
    controls = catalog_parameters(check_file, "sysctl.yml")
    assert controls["CG-NET-010"]["router_groups"] == ["router"]
    assert controls["CG-NET-011"]["hosts_using_slaac"] == ["all"]
    modules = catalog_parameters(check_file, "kernel_modules.yml")
    assert "usb-storage" in modules["CG-MOD-004"]["modules"]


class _Backend:
    def __init__(self, variables: dict[str, object]) -> None:
        self.variables = variables

    def get_variables(self) -> dict[str, object]:
        return self.variables


class _Host:
    def __init__(self, backend: object) -> None:
        self.backend = backend


def test_inventory_names_are_groups_name_and_all(monkeypatch: pytest.MonkeyPatch) -> None:
    import testinfra

    variables = {"inventory_hostname": "router1", "group_names": ["all", "router"]}
    monkeypatch.setattr(testinfra, "get_host", lambda spec: _Host(_Backend(variables)))
    assert inventory_names("ansible://router1") == {"router1", "router", "all"}
    monkeypatch.setattr(testinfra, "get_host", lambda spec: _Host(object()))
    with pytest.raises(SectionError, match="not an ansible:// host"):
        inventory_names(None)


# ------------------------------------------------------------------------- on this machine

KERNEL_SECTIONS = {
    "kernel-modprobe": kernel_modules.MODPROBE_COMMAND,
    "kernel-loaded-modules": kernel_modules.LOADED_MODULES_COMMAND,
    "kernel-limits": kernel_limits.LIMITS_COMMAND,
    "kernel-coredump": kernel_limits.COREDUMP_COMMAND,
    "kernel-mounts": kernel_mounts.MOUNTS_COMMAND,
}


@pytest.mark.parametrize("name", sorted(KERNEL_SECTIONS))
def test_each_snippet_runs_in_sh_and_parses(name: str) -> None:
    """Run as the gather script runs it (sh, not bash): it parses, or says why it cannot."""
    assert f"{MARK}{name}" in gather_script(set())
    done = subprocess.run(
        ["sh", "-c", KERNEL_SECTIONS[name]], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if lines and lines[0] == "@@error":
        assert len(lines) > 1, "an @@error line must be followed by the reason"
        return
    facts = collect(lambda command: (0, f"{MARK}{name}\n{done.stdout}", ""))
    assert name in facts.sections, facts.errors.get(name)
    if name == "kernel-mounts":
        assert "/" in facts.sections[name].mounted


# ------------------------------------------------------------------------- the roles' side
# The mounts role's module applies the same rules on the host as the checks here; its pure
# functions are tested with the same cases. Each role loads vars/<distribution>.yml: Debian
# (the lab) and Ubuntu (designed for, tested here only) must define the same variables.

ROLES = content_root() / "playbooks" / "roles"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _role_module(role: str, name: str) -> ModuleType:
    # Ansible serves the module_utils paths of ansible.cfg as ansible.module_utils.*; do the same
    for shared, utils in (
        ("cityguard_host", ROLES.parent / "module_utils" / "cityguard_host.py"),
        ("cityguard_mount_rules", Path(hostside.__file__).parent / "cityguard_mount_rules.py"),
    ):
        if f"ansible.module_utils.{shared}" not in sys.modules:
            sys.modules[f"ansible.module_utils.{shared}"] = _load(shared, utils)
    spec = importlib.util.spec_from_file_location(name, ROLES / role / "library" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("defaults", "defaults,nodev,nosuid,noexec"),
        ("defaults,exec", "defaults,nodev,nosuid,noexec"),
        ("rw,nosuid,nodev,size=50%", "rw,nosuid,nodev,size=50%,noexec"),
        ("nodev,nosuid,noexec", "nodev,nosuid,noexec"),
        ("", "nodev,nosuid,noexec"),
    ],
)
def test_mount_module_adds_missing_options_last(options: str, expected: str) -> None:
    module = _role_module("mounts", "cityguard_mount_options")
    result = module.with_options(options, ["nodev", "nosuid", "noexec"])
    assert result == expected
    assert option_flags(result) == {"nodev", "nosuid", "noexec"}


def test_mount_module_edits_only_the_option_field_of_fstab() -> None:
    module = _role_module("mounts", "cityguard_mount_options")
    required = ["nodev", "nosuid", "noexec"]
    assert module.fstab_line_with("UUID=0b3f  /var/tmp   ext4  nodev   0  2", required) == (
        "UUID=0b3f  /var/tmp   ext4  nodev,nosuid,noexec   0  2"
    )
    assert module.fstab_line_with("tmpfs /tmp tmpfs", required) == (
        "tmpfs\t/tmp\ttmpfs\tdefaults,nodev,nosuid,noexec\t0\t0"
    )
    lines = ["# /etc/fstab", "tmpfs /tmp tmpfs defaults 0 0", "/dev/sdb1 /tmp/ ext4 rw 0 2"]
    assert module.fstab_index(lines, "/tmp") == 2
    assert module.unit_name("/dev/shm") == unit_name("/dev/shm")
    assert module.escape("/srv/city data") == "/srv/city\\040data"


@pytest.mark.parametrize("role", ["sysctl", "kernel_modules", "core_dumps", "mounts"])
def test_debian_and_ubuntu_define_the_same_role_variables(role: str) -> None:
    debian = yaml.safe_load((ROLES / role / "vars" / "Debian.yml").read_text())
    ubuntu = yaml.safe_load((ROLES / role / "vars" / "Ubuntu.yml").read_text())
    assert set(debian) == set(ubuntu)
    assert all(name.startswith(f"{role}_") for name in debian)
