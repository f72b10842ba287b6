"""System logging: journald (as systemd resolves its configuration), rsyslog, log rotation, and
the permissions of the files under /var/log."""

import re

import pytest

from cityguard.verify.facts import watch_paths
from cityguard.verify.sections.catalog import holds, parameter_items
from cityguard.verify.sections.services import package, unit

OPTIONS = [
    pytest.param(c, o, marks=pytest.mark.controls(c), id=f"{c}:{o}")
    for c, o in parameter_items("logging.yml", "options")
]
LOGROTATE_CRON, RSYSLOG_ROTATION = watch_paths(
    "/etc/cron.daily/logrotate", "/etc/logrotate.d/rsyslog"
)
# login records: `last`, `lastb` and `lastlog` read them as the calling user (CIS allows 0664)
LOGIN_RECORDS = re.compile(r"^/var/log/(wtmp|btmp|lastlog)([.-].*)?$")
NETWORK_INPUTS = {
    "imtcp": {"imtcp", "InputTCPServerRun"},
    "imudp": {"imudp", "UDPServerRun", "InputUDPServerRun"},
    "imrelp": {"imrelp", "InputRELPServerRun"},
}
TRUE = {"yes", "true", "on", "1"}
FALSE = {"no", "false", "off", "0"}


def _normal(value):
    """systemd accepts several spellings of a boolean."""
    lowered = value.lower()
    return "yes" if lowered in TRUE else "no" if lowered in FALSE else value


@pytest.mark.parametrize(("control_id", "option"), OPTIONS)
def test_journald_option(control_id, option, facts, expect, param):
    wanted = str(param(control_id, "options")[option])
    value, source = facts.section("system-journald").get(option, (None, None))
    observed = None if value is None else _normal(value)
    expect.equal(observed, _normal(wanted), f"{option} ({source or 'not set'})")


@pytest.mark.controls("CG-LOG-001")
def test_journald_running(facts, expect):
    journald = unit(facts.section("system-units"), "systemd-journald.service")
    expect.equal(journald.active, "active", journald.name)


@pytest.mark.controls("CG-LOG-003")
def test_rsyslog_installed(facts, expect):
    rsyslog = package(facts.section("system-packages"), "rsyslog")
    expect.equal(rsyslog.state, "installed", rsyslog.label)


@pytest.mark.controls("CG-LOG-003")
def test_rsyslog_enabled(facts, expect):
    expect.equal(
        unit(facts.section("system-units"), "rsyslog.service").file_state,
        "enabled",
        "rsyslog.service",
    )


@pytest.mark.controls("CG-LOG-003")
def test_rsyslog_running(facts, expect):
    expect.equal(
        unit(facts.section("system-units"), "rsyslog.service").active, "active", "rsyslog.service"
    )


@pytest.mark.controls("CG-LOG-004")
def test_rsyslog_file_create_mode(facts, expect, param):
    """Every $FileCreateMode (each applies to the actions after it) is no wider than wanted."""
    limit = int(param("CG-LOG-004", "file_create_mode"), 8)
    modes = facts.section("system-rsyslog").file_create_modes
    observed = ", ".join(f"{mode} ({path})" for mode, path in modes) or "not set (0644)"
    ok = bool(modes) and not any(int(mode, 8) & ~limit for mode, _ in modes)
    holds(expect, ok, observed, f"{limit:04o} or stricter", "$FileCreateMode")


def _log_files(facts, bits, *, login_records_allowed):
    found = [
        entry
        for entry in facts.section("system-logfiles")
        if entry.mode & bits and not (login_records_allowed and LOGIN_RECORDS.match(entry.path))
    ]
    shown = "; ".join(e.describe() for e in found[:20])
    return f"{len(found)}: {shown}" if found else "none"


@pytest.mark.controls("CG-LOG-004")
def test_log_files_not_world_writable(facts, expect):
    expect.equal(
        _log_files(facts, 0o002, login_records_allowed=False),
        "none",
        "log files writable by every user",
    )


@pytest.mark.controls("CG-LOG-004")
def test_log_files_not_group_writable(facts, expect):
    expect.equal(
        _log_files(facts, 0o020, login_records_allowed=True),
        "none",
        "log files writable by their group (login records excepted)",
    )


@pytest.mark.controls("CG-LOG-004")
def test_log_files_not_world_readable(facts, expect):
    expect.equal(
        _log_files(facts, 0o004, login_records_allowed=True),
        "none",
        "log files readable by every user (login records excepted)",
    )


@pytest.mark.parametrize(
    "module",
    [pytest.param(m, marks=pytest.mark.controls("CG-LOG-005"), id=m) for m in NETWORK_INPUTS],
)
def test_rsyslog_network_input_absent(module, facts, expect):
    inputs = facts.section("system-rsyslog").inputs
    found = [f"{name} ({path})" for name, path in inputs if name in NETWORK_INPUTS[module]]
    expect.equal(", ".join(found) or "none", "none", f"{module} inputs")


@pytest.mark.controls("CG-LOG-006")
def test_logrotate_installed(facts, expect):
    logrotate = package(facts.section("system-packages"), "logrotate")
    expect.equal(logrotate.state, "installed", logrotate.label)


@pytest.mark.controls("CG-LOG-006")
def test_logrotate_scheduled(facts, expect):
    """By its systemd timer; hosts without systemd timers run it from cron.daily."""
    timer = unit(facts.section("system-units"), "logrotate.timer")
    if timer.file_state is None and facts.stat(LOGROTATE_CRON) is not None:
        expect.equal("cron.daily", "cron.daily", "logrotate runs from")
        return
    expect.equal(timer.file_state, "enabled", timer.name)


@pytest.mark.controls("CG-LOG-006")
def test_rsyslog_logs_rotated(facts, expect):
    expect.equal("present" if facts.stat(RSYSLOG_ROTATION) else None, "present", RSYSLOG_ROTATION)


@pytest.mark.controls("CG-LOG-007")
def test_logs_forwarded_to_log_host(facts, expect, param):
    target = param("CG-LOG-007", "remote_target")
    forwards = facts.section("system-rsyslog").forwards
    observed = ", ".join(f.describe() for f in forwards) or "no forwarding"
    if not target:
        # the baseline requires a log host the site has not named: say so, never pass
        expect.equal(
            observed,
            "a central log host, not configured: set parameters: CG-LOG-007: "
            "{remote_target: ...} in the site file",
            "rsyslog forwards to",
        )
    port, protocol = str(param("CG-LOG-007", "remote_port")), param("CG-LOG-007", "remote_protocol")
    hit = any((f.target, f.port, f.protocol) == (target, port, protocol) for f in forwards)
    expect.equal(
        f"{protocol}://{target}:{port}" if hit else observed,
        f"{protocol}://{target}:{port}",
        "rsyslog forwards to",
    )
