"""sudo: proven on the sudoers files as sudo reads them (/etc/sudoers, then the includedir files
in name order, skipping names with a dot or ending in ~), and on the sudo log file."""

import pytest

from cityguard.verify.sections.access_rules import Rule, mode_and_owner, stat_text, within
from cityguard.verify.sections.access_sudoers import parse_sudoers

NONE = Rule("none", lambda value: value == "none")


def _sudoers(facts):
    return parse_sudoers(facts.section("access-files"))


def _setting_text(setting):
    if setting is None:
        return None
    name = ("!" if setting.negated else "") + setting.name
    value = "" if setting.value is None else f"={setting.value}"
    return f"{name}{value} ({setting.path})"


@pytest.mark.controls("CG-SUDO-001")
def test_sudo_runs_commands_in_a_pseudo_terminal(facts, expect):
    sudoers = _sudoers(facts)
    negated = [_setting_text(d) for d in sudoers.defaults if d.name == "use_pty" and d.negated]
    effective = sudoers.effective("use_pty")
    observed = "; ".join([_setting_text(effective) or "use_pty not set", *negated])
    expect.equal(
        observed,
        Rule(
            "use_pty, never negated",
            lambda v: str(v).startswith("use_pty ") and "!use_pty" not in v,
        ),
        "Defaults use_pty",
    )


@pytest.mark.controls("CG-SUDO-002")
def test_sudo_logs_to_its_own_file(facts, expect, param):
    effective = _sudoers(facts).effective("logfile")
    wanted = str(param("CG-SUDO-002", "logfile"))
    expect.equal(
        effective.value if effective and not effective.negated else None, wanted, "Defaults logfile"
    )


@pytest.mark.controls("CG-SUDO-002")
def test_sudo_log_file_is_private(facts, expect, param):
    path = str(param("CG-SUDO-002", "logfile"))
    stat = facts.section("access-stat").get(path)
    expect.equal(stat_text(stat), mode_and_owner(0o640, ["root:root", "root:adm"]), path)


@pytest.mark.controls("CG-SUDO-003")
def test_sudo_asks_again_after_a_timeout(facts, expect, param):
    sudoers = _sudoers(facts)
    limit = int(param("CG-SUDO-003", "timestamp_timeout"))
    settings = [d for d in sudoers.defaults if d.name == "timestamp_timeout"]
    # sudo's own default is 15 minutes; every setting (per user too) must stay within the limit
    observed = "; ".join(_setting_text(d) for d in settings) or "15 (sudo default)"
    values = [d.value for d in settings] or ["15"]
    expect.equal(
        observed,
        Rule(
            f"every timestamp_timeout 0 to {limit} minutes",
            lambda _: all(within(0, limit) == v for v in values),
        ),
        "Defaults timestamp_timeout",
    )


@pytest.mark.controls("CG-SUDO-003")
def test_sudo_never_skips_authentication(facts, expect):
    skipped = [
        _setting_text(d) for d in _sudoers(facts).defaults if d.name == "authenticate" and d.negated
    ]
    expect.equal("; ".join(skipped) or "none", NONE, "Defaults !authenticate")


@pytest.mark.controls("CG-SUDO-004")
def test_nopasswd_only_for_approved_accounts(facts, expect, param):
    connection_user = facts.section("access-accounts").connection_user
    allowed = [*param("CG-SUDO-004", "allowed"), connection_user]
    rules = [r for r in _sudoers(facts).rules if r.nopasswd]
    observed = "; ".join(f"{r.principal} ({r.path})" for r in rules) or "none"
    expect.equal(
        observed,
        Rule(
            "NOPASSWD only for " + ", ".join(a for a in allowed if a),
            lambda _: all(r.principal in allowed for r in rules),
        ),
        "NOPASSWD rules",
    )
