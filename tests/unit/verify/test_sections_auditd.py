"""The audit system's fact sections: rules reduced to what they mean, so a rule as written in
rules.d matches its `auditctl -l` rendering, and every rule in the catalog parses."""

from __future__ import annotations

import pytest

from cityguard.verify.sections.auditd import (
    AuditRule,
    parse_audit_files,
    parse_audit_loaded,
    parse_audit_rule,
)
from cityguard.verify.sections.catalog import default_parameters, parameter_items

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


def test_every_catalog_audit_rule_parses_to_a_rule() -> None:
    for control_id, name in parameter_items("auditd.yml", "rules"):
        text = default_parameters("auditd.yml")[control_id]["rules"][name]
        rule = parse_audit_rule(text)
        assert rule is not None and rule.kind in ("watch", "syscall") and rule.key, (name, rule)
