"""Kernel auditing: the daemon, the kernel command line, auditd.conf, and the audit rules.

auditd cannot run in a container (EPERM outside the initial PID namespace, so the lab masks
it) and a container boots no kernel of its own: there the running daemon, the loaded rules and
the kernel command line are not-applicable, and the rules files and auditd.conf are proven.
Rules are compared by meaning, so `auditctl -l` and the rules files match despite spelling.
"""

import pytest

from cityguard.verify.sections.auditd import parse_audit_rule
from cityguard.verify.sections.catalog import holds, parameter_items
from cityguard.verify.sections.services import package, unit

NO_AUDIT = (
    "auditd cannot run in a {} container (EPERM outside the initial PID namespace; "
    "the lab masks auditd.service): the rules files and auditd.conf are checked instead"
)
NO_KERNEL = (
    "a {} container boots no kernel of its own: there is no bootloader entry or "
    "kernel command line to set"
)
BOOT_PARAMETERS = ("audit", "audit_backlog_limit")
RULE_CONTROLS = sorted({c for c, _ in parameter_items("auditd.yml", "rules")})


def per_control(items):
    return [pytest.param(c, k, marks=pytest.mark.controls(c), id=f"{c}:{k}") for c, k in items]


@pytest.mark.controls("CG-AUD-001")
def test_auditd_installed(facts, expect):
    auditd = package(facts.section("system-packages"), "auditd")
    expect.equal(auditd.state, "installed", auditd.label)


@pytest.mark.controls("CG-AUD-001")
def test_auditd_enabled(facts, expect):
    if facts.container:
        expect.not_applicable(NO_AUDIT.format(facts.container))
    expect.equal(
        unit(facts.section("system-units"), "auditd.service").file_state,
        "enabled",
        "auditd.service",
    )


@pytest.mark.controls("CG-AUD-001")
def test_auditd_running(facts, expect):
    if facts.container:
        expect.not_applicable(NO_AUDIT.format(facts.container))
    expect.equal(
        unit(facts.section("system-units"), "auditd.service").active, "active", "auditd.service"
    )


def _requirement(name, param):
    return "1" if name == "audit" else f"at least {param('CG-AUD-002', 'backlog_limit')}"


def _boot_value_ok(name, value, param):
    if name == "audit":
        return value == "1"
    return (value or "").isdigit() and int(value) >= int(param("CG-AUD-002", "backlog_limit"))


def _value(parameters, name):
    values = [p.partition("=")[2] for p in parameters if p.partition("=")[0] == name]
    return values[-1] if values else None  # the kernel uses the last one


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.controls("CG-AUD-002"), id=n) for n in BOOT_PARAMETERS],
)
def test_audit_boot_parameter_configured(name, facts, expect, param):
    """On every kernel entry of grub.cfg, so every boot, older kernels included, audits."""
    if facts.container:
        expect.not_applicable(NO_KERNEL.format(facts.container))
    boot = facts.section("system-boot")
    values = [_value(entry, name) for entry in boot.kernel_lines]
    if not boot.grub_cfg or not values:
        observed, ok = "(no kernel entry in /boot/grub/grub.cfg)", False
    else:
        observed = ", ".join(sorted({v or "(missing)" for v in values}))
        ok = all(_boot_value_ok(name, v, param) for v in values)
    holds(expect, ok, observed, _requirement(name, param), f"{name}= in grub.cfg")


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.controls("CG-AUD-002"), id=n) for n in BOOT_PARAMETERS],
)
def test_audit_boot_parameter_active(name, facts, expect, param):
    if facts.container:
        expect.not_applicable(NO_KERNEL.format(facts.container))
    value = _value(facts.section("system-boot").cmdline, name)
    holds(
        expect,
        _boot_value_ok(name, value, param),
        value,
        _requirement(name, param),
        f"{name}= on the running kernel's command line",
    )


@pytest.mark.parametrize(
    ("control_id", "key"), per_control(parameter_items("auditd.yml", "settings"))
)
def test_auditd_setting(control_id, key, facts, expect, param):
    wanted = str(param(control_id, "settings")[key])
    value = facts.section("system-audit-files").settings.get(key)
    if wanted.isdigit():  # a size: larger is fine
        ok = (value or "").isdigit() and int(value) >= int(wanted)
        holds(expect, ok, value, f"at least {wanted}", key)
    else:
        expect.equal(None if value is None else value.lower(), wanted.lower(), key)


@pytest.mark.parametrize(
    ("control_id", "name"), per_control(parameter_items("auditd.yml", "rules"))
)
def test_audit_rule_in_files(control_id, name, facts, expect, param):
    text = " ".join(param(control_id, "rules")[name].split())
    wanted = parse_audit_rule(text)
    files = [
        path for rule, path in facts.section("system-audit-files").rules if rule.covers(wanted)
    ]
    holds(expect, bool(files), files[0] if files else "missing", "in /etc/audit/rules.d", text)


@pytest.mark.parametrize(
    "control_id", [pytest.param(c, marks=pytest.mark.controls(c), id=c) for c in RULE_CONTROLS]
)
def test_audit_rules_loaded(control_id, facts, expect, param):
    if facts.container:
        expect.not_applicable(NO_AUDIT.format(facts.container))
    loaded = facts.section("system-audit-loaded").rules
    rules = param(control_id, "rules")
    expect.each_equal(
        {
            name: "loaded" if any(r.covers(parse_audit_rule(text)) for r in loaded) else None
            for name, text in rules.items()
        },
        dict.fromkeys(rules, "loaded"),
    )


@pytest.mark.controls("CG-AUD-007")
def test_audit_rules_immutable_in_files(facts, expect):
    """augenrules joins the files in name order; the last `-e` wins."""
    modes = [
        (" ".join(sorted(rule.fields)), path)
        for rule, path in facts.section("system-audit-files").rules
        if rule.kind == "control" and rule.target == "-e"
    ]
    observed = f"-e {modes[-1][0]} ({modes[-1][1]})" if modes else "no -e rule"
    holds(
        expect,
        bool(modes) and modes[-1][0] == "2",
        observed,
        "-e 2",
        "last enable flag in the rules files",
    )


@pytest.mark.controls("CG-AUD-007")
def test_audit_rules_immutable_loaded(facts, expect):
    if facts.container:
        expect.not_applicable(NO_AUDIT.format(facts.container))
    expect.equal(
        facts.section("system-audit-loaded").status.get("enabled"), "2", "auditctl -s enabled"
    )
