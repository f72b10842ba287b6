"""Parsing what the gather script prints on a host, on text as a Debian 12 host prints it."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from cityguard.verify import facts as facts_module
from cityguard.verify.facts import (
    MARK,
    FileStat,
    HostFacts,
    SectionError,
    collect,
    gather_script,
    parse_sshd,
    parse_stats,
    parse_sysctl,
    parse_sysctl_files,
    split_sections,
)

# `sshd -T` on Debian 12 (OpenSSH 9.2p1), trimmed; multi-valued keywords print once per value
SSHD_T = """\
port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
logingracetime 120
maxauthtries 6
maxsessions 10
permitrootlogin without-password
pubkeyauthentication yes
passwordauthentication yes
kbdinteractiveauthentication no
permitemptypasswords no
x11forwarding yes
printmotd no
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
acceptenv LANG
acceptenv LC_*
subsystem sftp /usr/lib/openssh/sftp-server
hostkey /etc/ssh/ssh_host_rsa_key
hostkey /etc/ssh/ssh_host_ecdsa_key
hostkey /etc/ssh/ssh_host_ed25519_key
""".splitlines()

# `sysctl -a`, trimmed
SYSCTL_A = """\
fs.protected_regular = 2
kernel.hostname = web1
kernel.randomize_va_space = 2
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 1
net.ipv4.ip_local_port_range = 32768\t60999
net.ipv6.conf.all.accept_redirects = 0
""".splitlines()

# `grep -H '' /usr/lib/sysctl.d/*.conf /run/sysctl.d/*.conf /etc/sysctl.d/*.conf /etc/sysctl.conf`
SYSCTL_FILES = """\
/usr/lib/sysctl.d/50-default.conf:# See sysctl.d(5) and core(5) for documentation.
/usr/lib/sysctl.d/50-default.conf:
/usr/lib/sysctl.d/50-default.conf:kernel.core_uses_pid = 1
/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.default.rp_filter = 2
/usr/lib/sysctl.d/50-default.conf:-net.ipv4.conf.all.rp_filter = 2
/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.all.accept_source_route = 0
/usr/lib/sysctl.d/50-pid-max.conf:kernel.pid_max = 4194304
/usr/lib/sysctl.d/protect-links.conf:fs.protected_fifos = 1
/usr/lib/sysctl.d/protect-links.conf:fs.protected_regular = 2
/etc/sysctl.d/60-cityguard.conf:# Managed by cityguard
/etc/sysctl.d/60-cityguard.conf:net.ipv4.conf.all.accept_redirects = 0
/etc/sysctl.d/60-cityguard.conf:kernel.randomize_va_space = 2
/etc/sysctl.d/99-sysctl.conf:#kernel.domainname = example.com
/etc/sysctl.conf:#kernel.domainname = example.com
/etc/sysctl.conf:; net.ipv4.ip_forward=1
""".splitlines()


# ---------------------------------------------------------------------------- sshd -T


def test_parse_sshd_keeps_every_value_of_multi_valued_keys() -> None:
    options = parse_sshd(SSHD_T)
    assert options["listenaddress"] == ["[::]:22", "0.0.0.0:22"]
    assert options["acceptenv"] == ["LANG", "LC_*"]
    assert options["hostkey"] == [
        "/etc/ssh/ssh_host_rsa_key",
        "/etc/ssh/ssh_host_ecdsa_key",
        "/etc/ssh/ssh_host_ed25519_key",
    ]


def test_parse_sshd_single_values_and_values_with_spaces() -> None:
    options = parse_sshd(SSHD_T)
    assert options["permitrootlogin"] == ["without-password"]
    assert options["maxauthtries"] == ["6"]
    assert options["authorizedkeysfile"] == [".ssh/authorized_keys .ssh/authorized_keys2"]
    assert options["subsystem"] == ["sftp /usr/lib/openssh/sftp-server"]
    assert len(options) == 18


def test_parse_sshd_lower_cases_keys_not_values() -> None:
    options = parse_sshd(["PermitRootLogin No", "Banner /etc/Issue.NET", ""])
    assert options == {"permitrootlogin": ["No"], "banner": ["/etc/Issue.NET"]}


def test_sshd_option_is_case_insensitive_and_first_value() -> None:
    facts = HostFacts(sshd=parse_sshd(SSHD_T))
    assert facts.sshd_option("PermitRootLogin") == "without-password"
    assert facts.sshd_option("ListenAddress") == "[::]:22"
    assert facts.sshd_option("MaxStartups") is None


# ---------------------------------------------------------------------------- sysctl -a


def test_parse_sysctl() -> None:
    values = parse_sysctl(SYSCTL_A)
    assert values["kernel.randomize_va_space"] == "2"
    assert values["net.ipv4.conf.default.accept_redirects"] == "1"
    assert values["net.ipv4.ip_local_port_range"] == "32768\t60999"
    assert values["kernel.hostname"] == "web1"
    assert len(values) == 7


def test_parse_sysctl_skips_lines_without_separator() -> None:
    lines = ["sysctl: permission denied on key 'fs.protected_fifos'", "vm.swappiness = 60"]
    assert parse_sysctl(lines) == {"vm.swappiness": "60"}


# ---------------------------------------------------------------------------- sysctl files


def test_parse_sysctl_files_realistic() -> None:
    persisted = parse_sysctl_files(SYSCTL_FILES)
    assert persisted == {
        "kernel.core_uses_pid": ("1", "/usr/lib/sysctl.d/50-default.conf"),
        "net.ipv4.conf.default.rp_filter": ("2", "/usr/lib/sysctl.d/50-default.conf"),
        "net.ipv4.conf.all.rp_filter": ("2", "/usr/lib/sysctl.d/50-default.conf"),
        "net.ipv4.conf.all.accept_source_route": ("0", "/usr/lib/sysctl.d/50-default.conf"),
        "kernel.pid_max": ("4194304", "/usr/lib/sysctl.d/50-pid-max.conf"),
        "net.ipv4.conf.all.accept_redirects": ("0", "/etc/sysctl.d/60-cityguard.conf"),
        "kernel.randomize_va_space": ("2", "/etc/sysctl.d/60-cityguard.conf"),
        "fs.protected_fifos": ("1", "/usr/lib/sysctl.d/protect-links.conf"),
        "fs.protected_regular": ("2", "/usr/lib/sysctl.d/protect-links.conf"),
    }


@pytest.mark.parametrize("etc_first", [False, True], ids=["grep-order", "reversed"])
def test_same_file_name_in_etc_replaces_the_vendor_file_entirely(etc_first: bool) -> None:
    vendor = [
        "/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.all.accept_redirects = 1",
        "/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.default.rp_filter = 2",
    ]
    admin = ["/etc/sysctl.d/50-default.conf:net.ipv4.conf.all.accept_redirects=0"]
    lines = admin + vendor if etc_first else vendor + admin
    assert parse_sysctl_files(lines) == {
        "net.ipv4.conf.all.accept_redirects": ("0", "/etc/sysctl.d/50-default.conf"),
    }


def test_run_overrides_usr_lib_and_etc_overrides_run() -> None:
    lines = [
        "/usr/lib/sysctl.d/70-x.conf:vm.swappiness = 60",
        "/run/sysctl.d/70-x.conf:vm.swappiness = 30",
        "/run/sysctl.d/71-y.conf:vm.dirty_ratio = 20",
        "/usr/lib/sysctl.d/71-y.conf:vm.dirty_ratio = 40",
        "/etc/sysctl.d/70-x.conf:vm.swappiness = 10",
    ]
    assert parse_sysctl_files(lines) == {
        "vm.swappiness": ("10", "/etc/sysctl.d/70-x.conf"),
        "vm.dirty_ratio": ("20", "/run/sysctl.d/71-y.conf"),
    }


def test_later_file_name_wins_whatever_its_directory() -> None:
    lines = [
        "/usr/lib/sysctl.d/99-vendor.conf:net.ipv4.conf.all.accept_redirects = 1",
        "/etc/sysctl.d/60-cityguard.conf:net.ipv4.conf.all.accept_redirects = 0",
        "/etc/sysctl.d/10-early.conf:net.ipv4.conf.all.accept_redirects = 0",
    ]
    assert parse_sysctl_files(lines) == {
        "net.ipv4.conf.all.accept_redirects": ("1", "/usr/lib/sysctl.d/99-vendor.conf"),
    }


def test_etc_sysctl_conf_counts_in_name_order_through_its_99_link() -> None:
    # Debian links /etc/sysctl.d/99-sysctl.conf to /etc/sysctl.conf; a later name still wins
    lines = [
        "/etc/sysctl.d/99-sysctl.conf:kernel.randomize_va_space=0",
        "/etc/sysctl.d/99-zz-last.conf:kernel.randomize_va_space = 2",
        "/etc/sysctl.d/60-cityguard.conf:kernel.randomize_va_space = 1",
    ]
    assert parse_sysctl_files(lines) == {
        "kernel.randomize_va_space": ("2", "/etc/sysctl.d/99-zz-last.conf"),
    }


def test_usr_local_lib_is_read_and_hidden_by_the_same_name_in_etc() -> None:
    lines = [
        "/usr/local/lib/sysctl.d/50-site.conf:net.ipv4.ip_forward = 1",
        "/usr/local/lib/sysctl.d/70-only-here.conf:vm.swappiness = 10",
        "/etc/sysctl.d/50-site.conf:net.ipv4.ip_forward = 0",
    ]
    assert parse_sysctl_files(lines) == {
        "net.ipv4.ip_forward": ("0", "/etc/sysctl.d/50-site.conf"),
        "vm.swappiness": ("10", "/usr/local/lib/sysctl.d/70-only-here.conf"),
    }


def test_later_line_in_one_file_wins() -> None:
    lines = [
        "/etc/sysctl.d/60-cityguard.conf:kernel.randomize_va_space = 1",
        "/etc/sysctl.d/60-cityguard.conf:kernel.randomize_va_space = 2",
    ]
    assert parse_sysctl_files(lines) == {
        "kernel.randomize_va_space": ("2", "/etc/sysctl.d/60-cityguard.conf"),
    }


def test_comments_blank_lines_dash_prefix_and_slash_keys() -> None:
    lines = [
        "/etc/sysctl.d/60-a.conf:# net.ipv4.ip_forward = 1",
        "/etc/sysctl.d/60-a.conf:; net.ipv6.conf.all.forwarding = 1",
        "/etc/sysctl.d/60-a.conf:   # indented comment = 1",
        "/etc/sysctl.d/60-a.conf:",
        "/etc/sysctl.d/60-a.conf:   ",
        "/etc/sysctl.d/60-a.conf:-net.ipv6.conf.all.accept_redirects = 0",
        "/etc/sysctl.d/60-a.conf:net/ipv4/conf/all/accept_source_route=0",
        "/etc/sysctl.d/60-a.conf:a line without an equals sign",
        "/etc/sysctl.d/60-a.conf:  kernel.kptr_restrict  =  2  ",
    ]
    assert parse_sysctl_files(lines) == {
        "net.ipv6.conf.all.accept_redirects": ("0", "/etc/sysctl.d/60-a.conf"),
        "net.ipv4.conf.all.accept_source_route": ("0", "/etc/sysctl.d/60-a.conf"),
        "kernel.kptr_restrict": ("2", "/etc/sysctl.d/60-a.conf"),
    }


def test_files_outside_the_sysctl_directories_are_ignored() -> None:
    lines = [
        "/etc/sysctl.d/old/60-a.conf:kernel.randomize_va_space = 0",
        "grep: /run/sysctl.d/*.conf: No such file or directory",
        "/etc/sysctl.d/60-a.conf:kernel.randomize_va_space = 2",
    ]
    assert parse_sysctl_files(lines) == {
        "kernel.randomize_va_space": ("2", "/etc/sysctl.d/60-a.conf"),
    }


# ---------------------------------------------------------------------------- stat


STAT_LINES = [
    "/etc/passwd\t644\troot\troot\tregular file",
    "/etc/shadow\t640\troot\tshadow\tregular file",
    "stat: cannot statx '/etc/ssh/sshd_config': No such file or directory",
    "/tmp\t1777\troot\troot\tdirectory",
    "/etc/unwatched\t600\troot\troot\tregular file",
]


def test_parse_stats() -> None:
    paths = {"/etc/passwd", "/etc/shadow", "/etc/ssh/sshd_config", "/tmp"}
    stats = parse_stats(STAT_LINES, paths)
    assert stats == {
        "/etc/passwd": FileStat("/etc/passwd", 0o644, "root", "root", "regular file"),
        "/etc/shadow": FileStat("/etc/shadow", 0o640, "root", "shadow", "regular file"),
        "/etc/ssh/sshd_config": None,
        "/tmp": FileStat("/tmp", 0o1777, "root", "root", "directory"),
    }
    shadow = stats["/etc/shadow"]
    assert shadow is not None
    assert shadow.mode_text == "0640"


def test_stat_of_an_unwatched_path_is_a_key_error() -> None:
    facts = HostFacts(stats=parse_stats(STAT_LINES, {"/etc/passwd"}))
    assert facts.stat("/etc/passwd") == FileStat(
        "/etc/passwd", 0o644, "root", "root", "regular file"
    )
    with pytest.raises(KeyError, match="/etc/shadow was not gathered"):
        facts.stat("/etc/shadow")


# ---------------------------------------------------------------------------- sections


def test_split_sections() -> None:
    output = "\n".join(
        [
            "motd noise before the first marker",
            f"{MARK}container",
            "systemd-nspawn",
            f"{MARK}sshd",
            "port 22",
            "permitrootlogin no",
            f"{MARK}sysctl",
            f"{MARK}stat",
            "/etc/passwd\t644\troot\troot\tregular file",
        ]
    )
    assert split_sections(output) == {
        "container": ["systemd-nspawn"],
        "sshd": ["port 22", "permitrootlogin no"],
        "sysctl": [],
        "stat": ["/etc/passwd\t644\troot\troot\tregular file"],
    }
    assert split_sections("") == {}


# ---------------------------------------------------------------------------- collect()


WATCHED = {"/etc/passwd", "/etc/shadow", "/etc/ssh/sshd_config"}


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A fresh registry of watched paths, so the test does not depend on what was imported."""
    monkeypatch.setattr(facts_module, "_registered_paths", set())
    facts_module.watch_paths(*sorted(WATCHED))
    return WATCHED


def host_output(container: str, sshd: list[str]) -> str:
    sections = {
        "container": [container],
        "sshd": sshd,
        "sysctl": SYSCTL_A,
        "sysctl-files": SYSCTL_FILES,
        "stat": STAT_LINES[:3],
    }
    lines = []
    for name, body in sections.items():
        lines += [MARK + name, *body]
    return "\n".join(lines) + "\n"


class FakeHost:
    def __init__(self, rc: int, stdout: str, stderr: str = "") -> None:
        self.result = (rc, stdout, stderr)
        self.commands: list[str] = []

    def __call__(self, command: str) -> tuple[int, str, str]:
        self.commands.append(command)
        return self.result


def test_collect_parses_every_section(watched: set[str]) -> None:
    host = FakeHost(0, host_output("systemd-nspawn", SSHD_T))
    facts = collect(host)
    assert host.commands == [gather_script(watched)]
    assert facts.container == "systemd-nspawn"
    assert facts.errors == {}
    assert facts.sshd_option("PermitRootLogin") == "without-password"
    assert facts.sshd["listenaddress"] == ["[::]:22", "0.0.0.0:22"]
    assert facts.sysctl_runtime["net.ipv4.conf.default.accept_redirects"] == "1"
    assert facts.sysctl_persisted["kernel.randomize_va_space"] == (
        "2",
        "/etc/sysctl.d/60-cityguard.conf",
    )
    assert facts.stats == {
        "/etc/passwd": FileStat("/etc/passwd", 0o644, "root", "root", "regular file"),
        "/etc/shadow": FileStat("/etc/shadow", 0o640, "root", "shadow", "regular file"),
        "/etc/ssh/sshd_config": None,
    }


def test_collect_on_a_machine_that_is_not_a_container(watched: set[str]) -> None:
    facts = collect(FakeHost(0, host_output("none", SSHD_T)))
    assert facts.container is None


def test_gather_script_names_every_section_and_watched_path(watched: set[str]) -> None:
    script = gather_script(watched)
    argv = shlex.split(script)
    assert argv[:2] == ["sh", "-c"]
    body = argv[2]
    for section in ("container", "sshd", "sysctl", "sysctl-files", "stat"):
        assert f"echo '{MARK}{section}'" in body
    assert "stat -c '%n\t%a\t%U\t%G\t%F' /etc/passwd /etc/shadow /etc/ssh/sshd_config" in body
    # the script must be valid sh; -n parses without running anything
    checked = subprocess.run(["sh", "-n", "-c", body], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "/dev/null" in gather_script(set())


def test_collect_records_a_failed_sshd_t(watched: set[str]) -> None:
    failed = [
        "@@error",
        "/etc/ssh/sshd_config: line 14: Bad configuration option: PermitRootLogon",
        "/etc/ssh/sshd_config: terminating, 1 bad configuration options",
    ]
    facts = collect(FakeHost(0, host_output("systemd-nspawn", failed)))
    assert facts.errors == {"sshd": " ".join(failed[1:])}
    assert facts.sshd == {}
    with pytest.raises(SectionError, match=r"sshd -T failed on the host: .*PermitRootLogon"):
        facts.sshd_option("PermitRootLogin")
    # the other sections are still parsed
    assert facts.sysctl_runtime["kernel.randomize_va_space"] == "2"
    assert facts.container == "systemd-nspawn"


def test_collect_fails_when_the_gather_command_fails(watched: set[str]) -> None:
    host = FakeHost(1, "", "sudo: a password is required\n")
    with pytest.raises(RuntimeError) as raised:
        collect(host)
    assert str(raised.value) == "gathering host facts failed (rc=1): sudo: a password is required"
