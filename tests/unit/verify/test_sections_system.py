"""The system area's fact sections: parsers on text as Debian 12 hosts print it, the firewall
model's verdicts, and the shell snippets' syntax."""

from __future__ import annotations

import json
import subprocess

import pytest

from cityguard.verify import facts as facts_module
from cityguard.verify.expectations import Expect
from cityguard.verify.sections import system
from cityguard.verify.sections.system import (
    SNIPPETS,
    AuditRule,
    Found,
    approved_services,
    evaluate,
    holds,
    package,
    packet_for,
    parameter_items,
    parse_apparmor,
    parse_apt,
    parse_audit_files,
    parse_audit_loaded,
    parse_audit_rule,
    parse_boot,
    parse_chrony,
    parse_entries,
    parse_journald,
    parse_listeners,
    parse_listing,
    parse_nft,
    parse_packages,
    parse_processes,
    parse_rsyslog,
    parse_scan,
    parse_units,
    unit,
)

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


# ------------------------------------------------------------------ auditd


@pytest.mark.parametrize(
    ("in_file", "from_auditctl"),
    [
        (
            "-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation",
            "-a always,exit -F arch=b64 -S execve -C uid!=euid -F auid!=-1 -F key=user_emulation",
        ),
        (
            "-a always,exit -F arch=b32 -S chown,fchown,lchown,fchownat -F auid>=1000 "
            "-F auid!=unset -k perm_mod",
            "-a always,exit -F arch=b32 -S lchown,fchown,chown,fchownat,lchown32,fchown32,chown32 "
            "-F auid>=1000 -F auid!=-1 -F key=perm_mod",
        ),
        ("-w /etc/apparmor.d/ -p wa -k MAC-policy", "-w /etc/apparmor.d -p wa -k MAC-policy"),
        (
            "-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=1000 -F auid!=unset "
            "-k kernel_modules",
            "-a always,exit -S all -F path=/usr/bin/kmod -F perm=x -F auid>=1000 -F auid!=-1 "
            "-F key=kernel_modules",
        ),
    ],
)
def test_audit_rules_match_by_meaning(in_file: str, from_auditctl: str) -> None:
    wanted, loaded = parse_audit_rule(in_file), parse_audit_rule(from_auditctl)
    assert wanted is not None and loaded is not None
    if "-S all" in from_auditctl:
        # auditctl lists path rules with `-S all`: every syscall, which covers the file's rule
        assert loaded.items == {"all"}
        loaded = AuditRule(loaded.kind, loaded.target, wanted.items, loaded.fields, loaded.key)
    assert loaded.covers(wanted)


def test_audit_rules_differing_in_filter_or_key_do_not_match() -> None:
    wanted = parse_audit_rule("-a always,exit -F arch=b64 -S mount -F auid>=1000 -k mounts")
    narrower = parse_audit_rule(
        "-a always,exit -F arch=b64 -S mount -F auid>=1000 -F uid=0 -k mounts"
    )
    other_key = parse_audit_rule("-a always,exit -F arch=b64 -S mount -F auid>=1000 -k mnt")
    weaker_watch = parse_audit_rule("-w /etc/shadow -p w -k identity")
    assert wanted and narrower and other_key and weaker_watch
    assert not narrower.covers(wanted) and not other_key.covers(wanted)
    watch = parse_audit_rule("-w /etc/shadow -p wa -k identity")
    assert watch and not weaker_watch.covers(watch)
    assert parse_audit_rule("  # a comment") is None
    assert parse_audit_rule("-e 2") == AuditRule("control", "-e", fields=frozenset({"2"}))


def test_audit_files_settings_and_rules_in_file_order() -> None:
    files = parse_audit_files(
        """\
/etc/audit/auditd.conf:#
/etc/audit/auditd.conf:max_log_file = 8
/etc/audit/auditd.conf:max_log_file_action = ROTATE
/etc/audit/rules.d/99-cityguard-finalize.rules:-e 2
/etc/audit/rules.d/50-cityguard.rules:## CG-AUD-004
/etc/audit/rules.d/50-cityguard.rules:-w /etc/sudoers -p wa -k scope
/etc/audit/rules.d/audit.rules:-D
/etc/audit/rules.d/audit.rules:-b 8192
""".splitlines()
    )
    assert files.settings == {"max_log_file": "8", "max_log_file_action": "ROTATE"}
    assert [(r.kind, r.target, p.rsplit("/", 1)[1]) for r, p in files.rules] == [
        ("watch", "/etc/sudoers", "50-cityguard.rules"),
        ("control", "-e", "99-cityguard-finalize.rules"),
        ("control", "-D", "audit.rules"),
        ("control", "-b", "audit.rules"),
    ]


def test_audit_loaded_status_and_rules() -> None:
    loaded = parse_audit_loaded(
        [
            "S enabled 2",
            "S failure 1",
            "S backlog_limit 8192",
            "R -w /etc/sudoers -p wa -k scope",
            "R -a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change",
        ]
    )
    assert loaded.status["enabled"] == "2"
    wanted = parse_audit_rule("-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change")
    assert wanted and any(rule.covers(wanted) for rule in loaded.rules)
    assert parse_audit_loaded(["S enabled 1", "R No rules"]).rules == ()


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


# ------------------------------------------------------------------ nftables


def payload(protocol: str, name: str) -> dict[str, object]:
    return {"payload": {"protocol": protocol, "field": name}}


def meta(key: str) -> dict[str, object]:
    return {"meta": {"key": key}}


def ct(key: str) -> dict[str, object]:
    return {"ct": {"key": key}}


def match(left: object, right: object, op: str = "==") -> dict[str, object]:
    return {"match": {"op": op, "left": left, "right": right}}


def chain(
    table: str, name: str, hook: str | None = None, policy: str = "accept", family: str = "inet"
) -> dict[str, object]:
    spec: dict[str, object] = {"family": family, "table": table, "name": name}
    if hook:
        spec.update(type="filter", hook=hook, prio=0, policy=policy)
    return {"chain": spec}


def rule(
    table: str, chain_name: str, *statements: object, family: str = "inet"
) -> dict[str, object]:
    return {
        "rule": {"family": family, "table": table, "chain": chain_name, "expr": list(statements)}
    }


def ruleset_of(*objects: object) -> system.Ruleset:
    parsed = parse_nft([json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}}, *objects]})])
    assert parsed is not None
    return parsed


ACCEPT, DROP = {"accept": None}, {"drop": None}


@pytest.fixture
def ruleset() -> system.Ruleset:
    """What `nft -j list ruleset` shows after the firewall role, one service rule kept."""
    table = "cityguard"
    return ruleset_of(
        {"table": {"family": "inet", "name": table, "handle": 6}},
        chain(table, "input", "input", "drop"),
        chain(table, "forward", "forward", "drop"),
        rule(table, "input", match(meta("iifname"), "lo"), ACCEPT),
        rule(
            table,
            "input",
            match(meta("iifname"), "lo", "!="),
            match(payload("ip6", "saddr"), "::1"),
            DROP,
        ),
        rule(table, "input", match(ct("state"), ["established", "related"], "in"), ACCEPT),
        rule(
            table,
            "input",
            match(
                payload("icmpv6", "type"),
                {"set": ["echo-request", "nd-neighbor-solicit", "nd-router-advert"]},
            ),
            ACCEPT,
        ),
        rule(table, "input", match(ct("state"), "invalid", "in"), DROP),
        rule(table, "input", match(payload("tcp", "dport"), 22), ACCEPT),
        rule(
            table,
            "input",
            match(payload("ip6", "saddr"), {"set": [{"prefix": {"addr": "fd00:10::", "len": 64}}]}),
            match(payload("tcp", "dport"), 5432),
            ACCEPT,
        ),
    )


def verdict(ruleset: system.Ruleset, packet: dict[str, str], hook: str = "input") -> bool:
    return all(v.accepted for v in evaluate(ruleset, packet, hook))


def test_nft_model_lists_chains_and_rules(ruleset: system.Ruleset) -> None:
    assert ruleset.tables == ("inet cityguard",)
    (input_chain,) = ruleset.base_chains("input")
    assert input_chain.policy == "drop" and input_chain.rules[0].text() == "meta iifname lo accept"
    assert input_chain.rules[5].text() == "tcp dport 22 accept"
    assert ruleset.canonical("inet", "cityguard")[0][:3] == ("input", "input", "drop")


def test_packets_get_the_verdicts_a_kernel_would_give(ruleset: system.Ruleset) -> None:
    new = {"ct_state": "new"}
    assert verdict(ruleset, packet_for("tcp", 22, "2001:db8::10", **new))
    assert verdict(ruleset, packet_for("tcp", 22, "192.0.2.10", **new))
    assert not verdict(ruleset, packet_for("tcp", 9, "2001:db8::10", **new))
    assert not verdict(ruleset, packet_for("tcp", 22, "::1", **new)), "forged loopback source"
    loopback = packet_for("tcp", 9, "::1", ct_state="new", meta_iifname="lo", meta_iif="lo")
    assert verdict(ruleset, loopback)
    assert verdict(ruleset, packet_for("tcp", 5432, "fd00:10::7", **new))
    assert not verdict(ruleset, packet_for("tcp", 5432, "fd00:11::7", **new))
    assert not verdict(ruleset, packet_for("tcp", 5432, "192.0.2.10", **new))
    assert verdict(ruleset, packet_for("tcp", 40000, "192.0.2.10", ct_state="established"))
    assert not verdict(ruleset, packet_for("tcp", 9, "2001:db8::10", **new), "forward")


def test_neighbour_discovery_is_untracked_not_invalid(ruleset: system.Ruleset) -> None:
    solicit = packet_for(
        "icmpv6", source="fe80::1", ct_state="untracked", icmpv6_type="nd-neighbor-solicit"
    )
    assert verdict(ruleset, solicit)
    (decision,) = evaluate(ruleset, solicit)
    assert decision.describe().startswith("accepted by inet cityguard input (rule 4: icmpv6 type")
    # a type the rules leave out falls through to the drop policy
    advert = packet_for(
        "icmpv6", source="fe80::1", ct_state="untracked", icmpv6_type="nd-neighbor-advert"
    )
    assert not verdict(ruleset, advert)


def test_unknown_fields_count_against_accepting_and_for_dropping() -> None:
    """A rule testing something the packet leaves open (hop limit) neither proves an accept
    nor is ignored when it drops."""
    advert = packet_for("icmpv6", source="fe80::1", icmpv6_type="nd-router-advert")
    hoplimit = match(payload("ip6", "hoplimit"), 255)
    accepting = ruleset_of(chain("t", "in", "input", "drop"), rule("t", "in", hoplimit, ACCEPT))
    dropping = ruleset_of(chain("t", "in", "input", "accept"), rule("t", "in", hoplimit, DROP))
    assert not verdict(accepting, advert)
    assert not verdict(dropping, advert)


def test_jumps_and_family_specific_chains() -> None:
    parsed = ruleset_of(
        chain("legacy", "INPUT", "input", "drop", family="ip"),
        chain("site", "in", "input", "drop"),
        chain("site", "services"),
        rule("site", "in", {"jump": {"target": "services"}}),
        rule("site", "services", match(payload("th", "dport"), {"range": [8000, 8100]}), ACCEPT),
    )
    ipv6 = packet_for("tcp", 8080, "2001:db8::10", ct_state="new")
    assert verdict(parsed, ipv6), "the ip table's chain never sees IPv6"
    assert not verdict(parsed, packet_for("tcp", 8080, "192.0.2.10", ct_state="new"))
    assert not verdict(parsed, packet_for("tcp", 9000, "2001:db8::10", ct_state="new"))


def test_nft_absent_and_unloadable() -> None:
    assert parse_nft(["absent"]) is None
    with pytest.raises(ValueError, match="Could not process rule"):
        parse_nft(["invalid", "/etc/nftables.conf:3:1-5: Error: Could not process rule"])
    assert ruleset_of().chains == ()


def test_approved_services_resolve_groups_to_addresses() -> None:
    hostvars = {
        "web1": {"ansible_host": "fd00:10::a"},
        "web2": {"ansible_host": "web2.example.lv", "firewall_addresses": ["198.51.100.7"]},
        "web3": {"ansible_host": "web3"},
    }
    services = approved_services(
        {
            "all": [{"name": "node-exporter", "port": 9100, "from": ["fd00:99::/64"]}],
            "db": [{"name": "postgresql", "port": 5432, "from_groups": ["web"]}],
            "web": [{"name": "https", "port": 443}],
        },
        ["db"],
        {"web": ["web1", "web2", "web3"], "db": ["db1"]},
        lambda name: hostvars.get(name, {}),
    )
    assert [(s.name, s.port, s.sources, s.restricted) for s in services] == [
        ("node-exporter", 9100, ("fd00:99::/64",), True),
        ("postgresql", 5432, ("fd00:10::a", "198.51.100.7"), True),
    ]


# ------------------------------------------------------------------ snippets and helpers


def test_every_snippet_is_registered_and_valid_shell() -> None:
    assert set(SNIPPETS) <= set(facts_module._sections)
    script = facts_module.gather_script({"/etc/passwd"})
    completed = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    inner = script.removeprefix("sh -c ")
    body = subprocess.run(["sh", "-c", f"printf %s {inner}"], capture_output=True, text=True)
    checked = subprocess.run(["sh", "-n", "-c", body.stdout], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_snippets_report_a_missing_tool_as_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    command, _ = SNIPPETS["system-nft"]
    completed = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, env={"PATH": str(tmp_path)}
    )
    assert completed.stdout.splitlines()[:2] == [
        "@@error",
        "nft not found (nftables is not installed)",
    ]


def test_parameter_items_follow_the_catalog() -> None:
    files = parameter_items("files.yml", "files")
    assert ("CG-FILE-001", "/etc/shadow") in files
    assert ("CG-FILE-005", "/boot/grub/grub.cfg") in files
    rules = parameter_items("auditd.yml", "rules")
    assert len(rules) >= 50 and {c for c, _ in rules} == {"CG-AUD-004", "CG-AUD-005", "CG-AUD-006"}


def test_every_catalog_audit_rule_parses_to_a_rule() -> None:
    for control_id, name in parameter_items("auditd.yml", "rules"):
        text = system.default_parameters("auditd.yml")[control_id]["rules"][name]
        rule = parse_audit_rule(text)
        assert rule is not None and rule.kind in ("watch", "syscall") and rule.key, (name, rule)


def test_holds_records_observed_and_shows_the_requirement_on_failure() -> None:
    expect = Expect()
    holds(expect, True, "8192", "at least 8192", "audit_backlog_limit")
    assert expect.observed == ["audit_backlog_limit (at least 8192): 8192"]
    with pytest.raises(AssertionError, match="observed 64, expected at least 8192"):
        holds(expect, False, "64", "at least 8192", "audit_backlog_limit")
