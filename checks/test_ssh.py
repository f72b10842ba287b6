"""SSH daemon: proven on the effective configuration (`sshd -T`), not on the file text.

One check per option, per host key file and per address family, so each keeps its own observed
value in the evidence. An option is proven for a connection no Match block names (`sshd -T`,
with the file that sets the value in force) and for each connection a Match block names
(`sshd -T -C`, cityguard.verify.sections.access_sshd): a block that weakens it fails the check,
naming the block's file and line.
"""

import ipaddress

import pytest

from cityguard.verify.facts import watch_paths
from cityguard.verify.sections.access_rules import (
    Rule,
    absent_or,
    mode_and_owner,
    only_from,
    stat_text,
    within,
)
from cityguard.verify.sections.access_sshd import first_setting

SSHD_CONFIG = watch_paths("/etc/ssh/sshd_config")[0]
CITYGUARD_DROPIN = "/etc/ssh/sshd_config.d/00-cityguard.conf"  # written by the ssh role
HOST_KEY_TYPES = ("rsa", "ecdsa", "ed25519")
HOST_KEYS = {kind: f"/etc/ssh/ssh_host_{kind}_key" for kind in HOST_KEY_TYPES}
watch_paths(*HOST_KEYS.values(), *(f"{path}.pub" for path in HOST_KEYS.values()))


def case(value, control_id, case_id=None):
    """One parametrized case, marked with the control it proves."""
    return pytest.param(value, marks=pytest.mark.controls(control_id), id=case_id or str(value))


def expect_everywhere(facts, expect, name, wanted):
    """`name` holds `wanted` (a value or a Rule) for a connection no Match block names and for
    every connection a Match block names; a value that does not hold is labelled with the other
    file that sets it, overriding cityguard's drop-in (or with the Match block)."""
    value = facts.sshd_option(name)
    label = name
    source = first_setting(facts.section("sshd-files"), name)
    if wanted != value and source and not source.startswith(CITYGUARD_DROPIN + ":"):
        label += f" (set in {source})"  # another file overrides cityguard's drop-in
    expect.equal(value, wanted, label)
    for context in facts.section("sshd-match"):
        expect.equal(context.option(name), wanted, f"{name} for {context.label}")


@pytest.mark.controls("CG-SSH-001")
def test_sshd_refuses_root_login(facts, expect):
    expect_everywhere(facts, expect, "PermitRootLogin", "no")


@pytest.mark.controls("CG-SSH-002")
def test_sshd_refuses_empty_passwords(facts, expect):
    expect_everywhere(facts, expect, "PermitEmptyPasswords", "no")


@pytest.mark.controls("CG-SSH-003")
def test_sshd_limits_auth_tries(facts, expect, param):
    expect_everywhere(
        facts, expect, "MaxAuthTries", within(1, int(param("CG-SSH-003", "max_auth_tries")))
    )


@pytest.mark.controls("CG-SSH-004")
def test_sshd_config_is_private(facts, expect):
    stat = facts.stat(SSHD_CONFIG)
    expect.equal(f"{stat.owner}:{stat.group}" if stat else None, "root:root", "owner")
    expect.mode_at_most(stat.mode if stat else None, 0o600, "mode")


@pytest.mark.parametrize("kind", [case(kind, "CG-SSH-005") for kind in HOST_KEY_TYPES])
def test_sshd_host_private_key_is_private(kind, facts, expect):
    path = HOST_KEYS[kind]
    expect.equal(stat_text(facts.stat(path)), absent_or(mode_and_owner(0o600, ["root:root"])), path)


@pytest.mark.parametrize("kind", [case(kind, "CG-SSH-005") for kind in HOST_KEY_TYPES])
def test_sshd_host_public_key_is_protected(kind, facts, expect):
    path = HOST_KEYS[kind] + ".pub"
    expect.equal(stat_text(facts.stat(path)), absent_or(mode_and_owner(0o644, ["root:root"])), path)


# option -> the value sshd must use: a literal, or the name of the control's parameter
SSHD_OPTIONS = [
    case(("HostbasedAuthentication", "no"), "CG-SSH-006", "HostbasedAuthentication"),
    case(("IgnoreRhosts", "yes"), "CG-SSH-006", "IgnoreRhosts"),
    case(("PermitUserEnvironment", "no"), "CG-SSH-006", "PermitUserEnvironment"),
    case(("Banner", "param:banner_file"), "CG-SSH-007", "Banner"),
    case(("LogLevel", "param:log_level"), "CG-SSH-011", "LogLevel"),
    case(("UsePAM", "yes"), "CG-SSH-012", "UsePAM"),
    case(("X11Forwarding", "no"), "CG-SSH-013", "X11Forwarding"),
    case(("AddressFamily", "any"), "CG-SSH-014", "AddressFamily"),
    case(("DisableForwarding", "yes"), "CG-SSH-015", "DisableForwarding"),
    case(("AllowTcpForwarding", "no"), "CG-SSH-015", "AllowTcpForwarding"),
    case(("AllowAgentForwarding", "no"), "CG-SSH-015", "AllowAgentForwarding"),
    case(("AllowStreamLocalForwarding", "no"), "CG-SSH-015", "AllowStreamLocalForwarding"),
]


def _control(request):
    return request.node.get_closest_marker("controls").args[0]


@pytest.mark.parametrize("option", SSHD_OPTIONS)
def test_sshd_option(option, facts, expect, param, request):
    name, wanted = option
    if wanted.startswith("param:"):
        wanted = str(param(_control(request), wanted.removeprefix("param:")))
    expect_everywhere(facts, expect, name, wanted)


# the strong algorithms sshd may offer: each offered one must be in the control's list
ALGORITHMS = [
    case(("Ciphers", "ciphers"), "CG-SSH-008", "Ciphers"),
    case(("MACs", "macs"), "CG-SSH-008", "MACs"),
    case(("KexAlgorithms", "kex_algorithms"), "CG-SSH-008", "KexAlgorithms"),
]


@pytest.mark.parametrize("option", ALGORITHMS)
def test_sshd_offers_only_strong_algorithms(option, facts, expect, param):
    name, parameter = option
    expect_everywhere(facts, expect, name, only_from(param("CG-SSH-008", parameter)))


def max_startups_within(limit):
    """`start:rate:full` no larger, field by field, than the limit (a bare number is start)."""
    wanted = [int(part) for part in str(limit).split(":")]

    def holds(value):
        fields = [int(part) for part in str(value).split(":")]
        return fields[0] > 0 and all(f <= w for f, w in zip(fields, wanted, strict=False))

    return Rule(f"{limit} or lower, field by field", holds)


# numeric limits: option -> parameter of its control (an upper bound; 0 would disable it)
LIMITS = [
    case(("ClientAliveInterval", "client_alive_interval"), "CG-SSH-009", "ClientAliveInterval"),
    case(("ClientAliveCountMax", "client_alive_count_max"), "CG-SSH-009", "ClientAliveCountMax"),
    case(("LoginGraceTime", "login_grace_time"), "CG-SSH-010", "LoginGraceTime"),
    case(("MaxStartups", "max_startups"), "CG-SSH-010", "MaxStartups"),
    case(("MaxSessions", "max_sessions"), "CG-SSH-010", "MaxSessions"),
]


@pytest.mark.parametrize("option", LIMITS)
def test_sshd_limit(option, facts, expect, param, request):
    name, parameter = option
    limit = param(_control(request), parameter)
    rule = max_startups_within(limit) if name == "MaxStartups" else within(1, int(limit))
    expect_everywhere(facts, expect, name, rule)


def _family(listen_address):
    """4 or 6 for a `listenaddress` value of `sshd -T` (`0.0.0.0:22`, `[::]:22`)."""
    host = listen_address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


@pytest.mark.parametrize("family", [case(4, "CG-SSH-014", "IPv4"), case(6, "CG-SSH-014", "IPv6")])
def test_sshd_listens_on_address_family(family, facts, expect):
    if "sshd" in facts.errors:
        facts.sshd_option("ListenAddress")  # raises: sshd -T failed, the check cannot evaluate
    addresses = ",".join(facts.sshd.get("listenaddress", [])) or None
    expect.equal(
        addresses,
        Rule(
            f"an IPv{family} address among them",
            lambda value: any(_family(a) == family for a in str(value).split(",")),
        ),
        "ListenAddress",
    )
