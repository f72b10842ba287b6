"""The system area's fact sections: parsers on text as Debian 12 hosts print it, the catalog
helpers the checks share, and the shell snippets' syntax. The audit rules and the firewall
model have their own files (test_sections_auditd.py, test_sections_firewall.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cityguard.verify import facts as facts_module
from cityguard.verify.expectations import Expect
from cityguard.verify.sections.apparmor import parse_apparmor, parse_listing
from cityguard.verify.sections.boot import parse_boot
from cityguard.verify.sections.catalog import holds, parameter_items
from cityguard.verify.sections.logs import parse_journald, parse_rsyslog
from cityguard.verify.sections.services import (
    package,
    parse_listeners,
    parse_packages,
    parse_processes,
    parse_units,
    unit,
)
from cityguard.verify.sections.system_files import Found, parse_entries, parse_scan
from cityguard.verify.sections.time_sync import parse_chrony
from cityguard.verify.sections.updates import APT_COMMAND, parse_apt

# ------------------------------------------------------------------ packages, units, processes


def test_packages_installed_removed_and_unknown() -> None:
    packages = parse_packages(
        [
            "ii \tchrony\t4.3-2+deb12u3",
            "rc \tntpsec\t1.2.2+dfsg1-1",
            "un \tsystemd-timesyncd\t",
        ]
    )
    assert packages["chrony"].installed and packages["chrony"].label == "chrony 4.3-2+deb12u3"
    assert packages["chrony"].describe() == "chrony 4.3-2+deb12u3 installed"
    assert not packages["ntpsec"].installed
    assert packages["ntpsec"].state == "removed, configuration files remain"
    assert packages["systemd-timesyncd"].state == "not installed"
    assert package(packages, "avahi-daemon").describe() == "avahi-daemon not installed"


def test_units_join_unit_files_and_loaded_units() -> None:
    units = parse_units(
        """\
A apparmor.service loaded inactive dead
A auditd.service masked inactive dead
A rsyslog.service loaded active running
F apparmor.service enabled
F auditd.service masked
F chrony.service enabled
F chronyd.service alias
F rsyslog.service enabled""".splitlines()
    )
    assert units["rsyslog.service"].file_state == "enabled"
    assert units["rsyslog.service"].active == "active"
    assert units["auditd.service"].describe() == "auditd.service masked, inactive"
    assert units["chrony.service"].load == "loaded" and units["chrony.service"].active == "inactive"
    assert unit(units, "avahi-daemon.service").describe() == "avahi-daemon.service not found"


def test_processes_and_listeners() -> None:
    assert parse_processes(["_chrony  chronyd", "root     rsyslogd"]) == [
        ("_chrony", "chronyd"),
        ("root", "rsyslogd"),
    ]
    listeners = parse_listeners(
        ["tcp 0.0.0.0:22", "tcp [::]:22", "tcp 127.0.0.1:25", "tcp [::1]:25", "udp *:68"]
    )
    assert [(x.address, x.port, x.loopback) for x in listeners] == [
        ("0.0.0.0", 22, False),
        ("::", 22, False),
        ("127.0.0.1", 25, True),
        ("::1", 25, True),
        ("*", 68, False),
    ]


# ------------------------------------------------------------------ filesystem


def test_scan_keeps_counts_beyond_the_listed_paths() -> None:
    found = parse_scan(
        [
            "ww-file\t/srv/upload/a",
            "ww-file\t/var/tmp/x",
            "unowned\t/home/gone",
            "count\tww-file\t250",
            "count\tunowned\t1",
        ]
    )
    assert found["ww-file"].count == 250
    assert found["ww-dir"] == Found()
    assert found["unowned"].describe() == "1: /home/gone"
    narrowed = found["ww-file"].excluding(["/srv/upload"])
    assert narrowed.paths == ("/var/tmp/x",) and narrowed.count == 249
    assert narrowed.describe(shown=1) == "249: /var/tmp/x and 248 more"
    assert found["ww-dir"].describe() == "none"


def test_entries_from_find_printf() -> None:
    entries = parse_entries(["640\troot\tadm\t/var/log/syslog", "664\troot\tutmp\t/var/log/wtmp"])
    assert entries[0].mode == 0o640 and entries[0].describe() == "/var/log/syslog 0640 root:adm"


# ------------------------------------------------------------------ time sync

DEBIAN_CHRONY = """\
/etc/chrony/chrony.conf:# Welcome to the chrony configuration file.
/etc/chrony/chrony.conf:confdir /etc/chrony/conf.d
/etc/chrony/chrony.conf:pool 2.debian.pool.ntp.org iburst
/etc/chrony/chrony.conf:sourcedir /run/chrony-dhcp
/etc/chrony/chrony.conf:keyfile /etc/chrony/chrony.keys
/etc/chrony/conf.d/site.conf:server ntp.example.lv iburst   # the city's own
/etc/chrony/conf.d/site.conf:user _chrony
/etc/default/chrony:# Options to pass to chrony.
/etc/default/chrony:DAEMON_OPTS="-F 1"
""".splitlines()


def test_chrony_sources_user_and_daemon_options() -> None:
    chrony = parse_chrony(DEBIAN_CHRONY)
    assert chrony.sources == (
        ("pool", "2.debian.pool.ntp.org", "/etc/chrony/chrony.conf"),
        ("server", "ntp.example.lv", "/etc/chrony/conf.d/site.conf"),
    )
    assert chrony.users == (("_chrony", "/etc/chrony/conf.d/site.conf"),)
    assert chrony.daemon_opts == "-F 1"


# ------------------------------------------------------------------ logging


def test_journald_effective_settings_last_file_wins() -> None:
    settings = parse_journald(
        """\
# /etc/systemd/journald.conf
#  This file is part of systemd.
[Journal]
#Storage=auto
#Compress=yes
Storage=volatile

# /etc/systemd/journald.conf.d/60-cityguard.conf
# Managed by cityguard (role logging).
[Journal]
Compress=yes
Storage=persistent
ForwardToSyslog=yes
""".splitlines()
    )
    assert settings["Storage"] == ("persistent", "/etc/systemd/journald.conf.d/60-cityguard.conf")
    assert settings["Compress"][0] == "yes" and "ForwardToSyslog" in settings
    assert "Seal" not in settings


def test_rsyslog_modes_network_inputs_and_forwarding() -> None:
    config = parse_rsyslog(
        """\
/etc/rsyslog.conf:module(load="imuxsock") # provides support for local system logging
/etc/rsyslog.conf:#module(load="imudp")
/etc/rsyslog.conf:#input(type="imudp" port="514")
/etc/rsyslog.conf:module(load="imtcp")
/etc/rsyslog.conf:$FileCreateMode 0640
/etc/rsyslog.conf:*.*;auth,authpriv.none\t\t-/var/log/syslog
/etc/rsyslog.d/10-old.conf:$ModLoad imudp
/etc/rsyslog.d/10-old.conf:$UDPServerRun 514
/etc/rsyslog.d/10-old.conf:*.* @@[fd00::5]:6514
/etc/rsyslog.d/60-cityguard-remote.conf:# Managed by cityguard
/etc/rsyslog.d/60-cityguard-remote.conf:*.* action(type="omfwd" target="logs.example.lv" port="514"
/etc/rsyslog.d/60-cityguard-remote.conf:           protocol="tcp" action.resumeRetryCount="-1")
/etc/rsyslog.d/70-app.conf:module(load="builtin:omfile" fileCreateMode="0644")
""".splitlines()
    )
    assert config.file_create_modes == (
        ("0640", "/etc/rsyslog.conf"),
        ("0644", "/etc/rsyslog.d/70-app.conf"),
    )
    assert config.inputs == (
        ("imtcp", "/etc/rsyslog.conf"),
        ("imudp", "/etc/rsyslog.d/10-old.conf"),
        ("UDPServerRun", "/etc/rsyslog.d/10-old.conf"),
    )
    assert [f.describe() for f in config.forwards] == [
        "tcp://fd00::5:6514 (/etc/rsyslog.d/10-old.conf)",
        "tcp://logs.example.lv:514 (/etc/rsyslog.d/60-cityguard-remote.conf)",
    ]


# ------------------------------------------------------------------ boot, AppArmor, apt


def test_boot_command_line_and_grub_entries() -> None:
    boot = parse_boot(
        [
            "C BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro quiet audit=1",
            "G present",
            "L linux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro audit=1 apparmor=1 quiet",
            "L linux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro single",
        ]
    )
    assert "audit=1" in boot.cmdline and boot.grub_cfg
    assert boot.kernel_lines[0] == ("root=UUID=1", "ro", "audit=1", "apparmor=1", "quiet")
    assert parse_boot(["C console=ttyS0", "G absent"]).grub_cfg is False


def test_apparmor_profiles_and_unconfined_processes() -> None:
    status = {
        "version": "2",
        "profiles": {"/usr/sbin/chronyd": "enforce"},
        "processes": {
            "/usr/sbin/chronyd": [
                {"profile": "/usr/sbin/chronyd", "pid": "612", "status": "enforce"}
            ],
            "/usr/sbin/cupsd": [
                {"profile": "/usr/sbin/cupsd", "pid": "700", "status": "unconfined"}
            ],
        },
    }
    parsed = parse_apparmor(
        [
            "enabled Y",
            "profile /usr/sbin/chronyd (enforce)",
            "profile nvidia_modprobe (complain)",
            "json " + json.dumps(status),
        ]
    )
    assert parsed.enabled == "Y"
    assert parsed.profiles == {"/usr/sbin/chronyd": "enforce", "nvidia_modprobe": "complain"}
    assert parsed.unconfined_processes == ("/usr/sbin/cupsd (pid 700)",)
    assert parse_apparmor(["enabled absent"]).profiles == {}
    assert parse_listing(["disable usr.bin.man", "force-complain usr.sbin.rsyslogd"]) == {
        "disable": ["usr.bin.man"],
        "force-complain": ["usr.sbin.rsyslogd"],
    }


def test_apt_effective_configuration_and_stamp_ages() -> None:
    apt = parse_apt(
        [
            'C APT::Periodic::Update-Package-Lists "1";',
            'C APT::Periodic::Unattended-Upgrade "0";',
            'C APT::Periodic::Unattended-Upgrade "1";',
            'C Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename},'
            'label=Debian-Security";',
            "S 1700000000 /var/lib/apt/periodic/update-success-stamp",
            "N 1700086400",
        ]
    )
    assert apt.value("APT::Periodic::Unattended-Upgrade") == "1"
    assert apt.config["Unattended-Upgrade::Origins-Pattern"][0].endswith("label=Debian-Security")
    assert apt.age_days("/var/lib/apt/periodic/update-success-stamp") == 1.0
    assert apt.age_days("/var/lib/apt/periodic/unattended-upgrades-stamp") is None


def test_apt_sources_suites_from_one_line_and_deb822_files(tmp_path: Path) -> None:
    """The section's own shell, run over a sources tree: options and comments do not confuse it."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://deb.debian.org/debian bookworm-backports main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] "
        "http://deb.debian.org/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "security.sources").write_text(
        "Types: deb\nURIs: http://security.debian.org/debian-security\n"
        "Suites: bookworm-security bookworm-updates\nComponents: main\n"
    )
    command = APT_COMMAND.replace("/etc/apt", str(tmp_path)).replace("/var/lib/apt", str(tmp_path))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)

    apt = parse_apt(output.stdout.splitlines())

    assert sorted(apt.suites) == ["bookworm", "bookworm-security", "bookworm-updates"]


# ------------------------------------------------------------------ snippets and helpers


SYSTEM_SECTIONS = {
    "system-packages",
    "system-units",
    "system-processes",
    "system-listeners",
    "system-scan",
    "system-sshd-dropins",
    "system-logfiles",
    "system-chrony",
    "system-journald",
    "system-rsyslog",
    "system-audit-files",
    "system-audit-loaded",
    "system-boot",
    "system-apparmor",
    "system-apparmor-files",
    "system-apt",
    "system-nft",
    "system-nft-boot",
}


def test_every_snippet_is_registered_and_valid_shell() -> None:
    assert {name for name in facts_module._sections if name.startswith("system-")} == (
        SYSTEM_SECTIONS
    )
    script = facts_module.gather_script({"/etc/passwd"})
    completed = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    inner = script.removeprefix("sh -c ")
    body = subprocess.run(["sh", "-c", f"printf %s {inner}"], capture_output=True, text=True)
    checked = subprocess.run(["sh", "-n", "-c", body.stdout], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_parameter_items_follow_the_catalog() -> None:
    files = parameter_items("files.yml", "files")
    assert ("CG-FILE-001", "/etc/shadow") in files
    assert ("CG-FILE-005", "/boot/grub/grub.cfg") in files
    rules = parameter_items("auditd.yml", "rules")
    assert len(rules) >= 50 and {c for c, _ in rules} == {"CG-AUD-004", "CG-AUD-005", "CG-AUD-006"}


def test_holds_records_observed_and_shows_the_requirement_on_failure() -> None:
    expect = Expect()
    holds(expect, True, "8192", "at least 8192", "audit_backlog_limit")
    assert expect.observed == ["audit_backlog_limit (at least 8192): 8192"]
    with pytest.raises(AssertionError, match="observed 64, expected at least 8192"):
        holds(expect, False, "64", "at least 8192", "audit_backlog_limit")
