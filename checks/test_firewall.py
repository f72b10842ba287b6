"""Host firewall (nftables): the rules in force are asked what happens to described packets.

Facts come from `nft -j list ruleset` (and, for the boot ruleset, /etc/nftables.conf loaded into
a throw-away network namespace). Every check names a packet, e.g. "an SSH connection from an
admin network" or "a neighbour solicitation", and expects accepted or dropped; the observed
value is the verdict of each input chain with the rule that decided it.
"""

import ipaddress
from dataclasses import dataclass, field

import pytest
import testinfra

from cityguard.verify.sections.catalog import holds
from cityguard.verify.sections.firewall import approved_services, evaluate, packet_for
from cityguard.verify.sections.services import package, unit

# documentation addresses (RFC 5737, RFC 3849): never a real admin network by accident
OUTSIDE = {
    "ipv4": ["192.0.2.10", "198.51.100.10", "203.0.113.10"],
    "ipv6": ["2001:db8::10", "3fff::10"],
}
FAMILIES = {"ipv4": "192.0.2.10", "ipv6": "2001:db8::10"}
UNLISTED_PORT = 9  # discard: nothing a server should offer
OTHER_MANAGERS = ("ufw", "firewalld", "iptables-persistent")
# ICMPv6 types IPv6 needs, and the conntrack state each arrives in: neighbour discovery is
# never tracked, errors arrive related to a connection, echo requests are new
ICMPV6 = {
    "nd-neighbor-solicit": "untracked",
    "nd-neighbor-advert": "untracked",
    "nd-router-solicit": "untracked",
    "nd-router-advert": "untracked",
    "echo-request": "new",
    "destination-unreachable": "related",
    "packet-too-big": "related",
    "time-exceeded": "related",
    "parameter-problem": "related",
}
PORT_FIELDS = ("tcp dport", "udp dport", "th dport")


@dataclass(frozen=True)
class Placement:
    """Where the host sits in the inventory: its groups, and every group's members."""

    group_names: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    backend: object = None

    def hostvars(self, name):
        runner = getattr(self.backend, "ansible_runner", None)
        return runner.get_variables(name) if runner else {}


@pytest.fixture(scope="module")
def placement(request):
    """Read from the inventory the check run uses (no SSH: testinfra parses it locally)."""
    spec = request.config.getoption("hosts")
    backend = testinfra.get_host(spec).backend if spec else None
    if backend is None or not hasattr(backend, "get_variables"):
        return Placement()
    variables = backend.get_variables()
    return Placement(
        list(variables.get("group_names", [])), dict(variables.get("groups", {})), backend
    )


def _ruleset(facts):
    return facts.section("system-nft")


def _verdict(facts, packet, hook="input"):
    """(accepted, observed text): accepted only when every chain on the hook accepts."""
    verdicts = evaluate(_ruleset(facts), packet, hook)
    if not verdicts:
        return True, f"no {hook} chain: accepted by default"
    return all(v.accepted for v in verdicts), "; ".join(v.describe() for v in verdicts)


def expect_verdict(expect, facts, packet, wanted, label, hook="input"):
    accepted, observed = _verdict(facts, packet, hook)
    holds(expect, accepted == (wanted == "accepted"), observed, wanted, label)


def optional(param, control_id, name, default):
    """A parameter of a control that may not be selected in this run."""
    try:
        return param(control_id, name)
    except KeyError:
        return default


def per_item(names, control_id):
    return [pytest.param(n, marks=pytest.mark.controls(control_id), id=n) for n in names]


# ------------------------------------------------------------------ CG-FW-001


@pytest.mark.controls("CG-FW-001")
def test_nftables_installed(facts, expect):
    found = package(facts.section("system-packages"), "nftables")
    expect.equal(found.state, "installed", found.label)


@pytest.mark.parametrize("name", per_item(OTHER_MANAGERS, "CG-FW-001"))
def test_other_firewall_manager_absent(name, facts, expect):
    found = package(facts.section("system-packages"), name)
    holds(expect, not found.installed, found.describe(), "not installed", "")


@pytest.mark.controls("CG-FW-001")
def test_nftables_enabled_at_boot(facts, expect):
    expect.equal(
        unit(facts.section("system-units"), "nftables.service").file_state,
        "enabled",
        "nftables.service",
    )


@pytest.mark.controls("CG-FW-001")
def test_boot_ruleset_matches_running(facts, expect):
    """Every table /etc/nftables.conf creates is in force unchanged, and every table in force
    with base chains comes back at boot."""
    boot, running = facts.section("system-nft-boot"), _ruleset(facts)
    if boot is None:
        holds(expect, False, "/etc/nftables.conf absent", "the running tables", "boot ruleset")
        return
    names = dict.fromkeys(
        [*boot.tables, *(f"{c.family} {c.table}" for c in running.chains if c.hook)]
    )
    differences = []
    for name in names:
        family, table = name.split(" ", 1)
        at_boot, now = boot.canonical(family, table), running.canonical(family, table)
        if at_boot != now:
            differences.append(
                f"{name}: "
                + ("not loaded now" if not now else "lost at reboot" if not at_boot else "differs")
            )
    observed = "; ".join(differences) or f"same: {', '.join(boot.tables) or 'no tables'}"
    holds(
        expect,
        bool(boot.tables) and not differences,
        observed,
        "the running tables, unchanged",
        "boot ruleset (/etc/nftables.conf)",
    )


# ------------------------------------------------------------------ CG-FW-002


@pytest.mark.controls("CG-FW-002")
def test_input_policy_is_drop(facts, expect):
    chains = _ruleset(facts).base_chains("input")
    observed = "; ".join(f"{c.label} policy {c.policy}" for c in chains) or "no input chain"
    ok = any(c.family == "inet" and c.policy == "drop" for c in chains)
    holds(expect, ok, observed, "an inet input chain with policy drop", "input chains")


@pytest.mark.controls("CG-FW-002")
def test_forward_policy(facts, expect, param, placement):
    """Routers (hosts in forward_groups) forward; every other host drops forwarded traffic."""
    router = bool(set(placement.group_names) & set(param("CG-FW-002", "forward_groups")))
    packet = packet_for("tcp", UNLISTED_PORT, FAMILIES["ipv6"], ct_state="new")
    wanted = "accepted" if router else "dropped"
    expect_verdict(
        expect,
        facts,
        packet,
        wanted,
        f"a forwarded packet ({'router' if router else 'not a router'})",
        "forward",
    )


@pytest.mark.parametrize("family", per_item(FAMILIES, "CG-FW-002"))
def test_unlisted_port_is_dropped(family, facts, expect):
    packet = packet_for("tcp", UNLISTED_PORT, FAMILIES[family], ct_state="new")
    expect_verdict(
        expect,
        facts,
        packet,
        "dropped",
        f"a new TCP connection to port {UNLISTED_PORT} over {family}",
    )


# ------------------------------------------------------------------ CG-FW-003


@pytest.mark.controls("CG-FW-003")
def test_loopback_accepted(facts, expect):
    packet = packet_for(
        "tcp", UNLISTED_PORT, "127.0.0.1", ct_state="new", meta_iifname="lo", meta_iif="lo"
    )
    expect_verdict(expect, facts, packet, "accepted", "a connection on the loopback interface")


@pytest.mark.parametrize("source", per_item(["127.0.0.1", "::1"], "CG-FW-003"))
def test_forged_loopback_source_dropped(source, facts, expect, param):
    """Even to the SSH port, which is otherwise open."""
    port = int(optional(param, "CG-FW-004", "ssh_port", 22))
    packet = packet_for("tcp", port, source, ct_state="new")
    expect_verdict(
        expect, facts, packet, "dropped", f"a packet from {source} arriving on a network interface"
    )


@pytest.mark.parametrize("family", per_item(FAMILIES, "CG-FW-003"))
def test_replies_accepted(family, facts, expect):
    packet = packet_for("tcp", 40000, FAMILIES[family], ct_state="established", tcp_sport="443")
    expect_verdict(
        expect, facts, packet, "accepted", f"a reply to the host's own connection over {family}"
    )


@pytest.mark.parametrize("icmp_type", per_item(ICMPV6, "CG-FW-003"))
def test_icmpv6_accepted(icmp_type, facts, expect):
    source = "fe80::1" if icmp_type.startswith("nd-") else FAMILIES["ipv6"]
    packet = packet_for("icmpv6", source=source, ct_state=ICMPV6[icmp_type], icmpv6_type=icmp_type)
    expect_verdict(expect, facts, packet, "accepted", f"ICMPv6 {icmp_type}")


@pytest.mark.controls("CG-FW-003")
def test_icmp_echo_accepted(facts, expect):
    packet = packet_for("icmp", source=FAMILIES["ipv4"], ct_state="new", icmp_type="echo-request")
    expect_verdict(expect, facts, packet, "accepted", "ICMP echo-request (ping)")


@pytest.mark.controls("CG-FW-003")
def test_dhcpv6_replies_accepted(facts, expect, param):
    if not param("CG-FW-003", "dhcpv6_client"):
        expect.equal("not required", "not required", "DHCPv6 client (parameter dhcpv6_client)")
        return
    packet = packet_for("udp", 546, "fe80::1", ct_state="new", udp_sport="547")
    expect_verdict(expect, facts, packet, "accepted", "a DHCPv6 server's reply (udp 547 -> 546)")


# ------------------------------------------------------------------ CG-FW-004


def _inside(address, networks):
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def _sample(network):
    """An address inside the network to test with: a documentation address if it fits."""
    net = ipaddress.ip_network(network, strict=False)
    for candidate in OUTSIDE["ipv4" if net.version == 4 else "ipv6"]:
        if ipaddress.ip_address(candidate) in net:
            return candidate
    return str(next(net.hosts(), net.network_address))


@pytest.mark.controls("CG-FW-004")
def test_ssh_open_to_admin_networks(facts, expect, param):
    port = int(param("CG-FW-004", "ssh_port"))
    observed, wanted = {}, {}
    for network in param("CG-FW-004", "admin_networks"):
        accepted, _ = _verdict(facts, packet_for("tcp", port, _sample(network), ct_state="new"))
        observed[f"ssh from {network}"] = "accepted" if accepted else "dropped"
        wanted[f"ssh from {network}"] = "accepted"
    expect.each_equal(observed, wanted)


@pytest.mark.controls("CG-FW-004")
def test_ssh_closed_to_other_networks(facts, expect, param):
    port = int(param("CG-FW-004", "ssh_port"))
    networks = param("CG-FW-004", "admin_networks")
    observed, wanted = {}, {}
    for family, candidates in OUTSIDE.items():
        outside = next((a for a in candidates if not _inside(a, networks)), None)
        label = f"ssh from outside the admin networks ({family})"
        if outside is None:
            observed[label] = wanted[label] = "no such address: the admin networks cover all"
            continue
        accepted, _ = _verdict(facts, packet_for("tcp", port, outside, ct_state="new"))
        observed[label] = f"{'accepted' if accepted else 'dropped'} from {outside}"
        wanted[label] = f"dropped from {outside}"
    expect.each_equal(observed, wanted)


def _services(param, placement):
    return approved_services(
        param("CG-FW-004", "services"), placement.group_names, placement.groups, placement.hostvars
    )


@pytest.mark.controls("CG-FW-004")
def test_approved_services_open(facts, expect, param, placement):
    """Open from their sources (anywhere when unrestricted) and, when restricted, closed to
    other addresses; a service whose sources resolve to no address stays closed."""
    observed, wanted = {}, {}

    def probe(key, service, source, want):
        packet = packet_for(service.protocol, service.port, source, ct_state="new")
        accepted, _ = _verdict(facts, packet)
        observed[key], wanted[key] = ("accepted" if accepted else "dropped"), want

    for service in _services(param, placement):
        label = f"{service.name} {service.port}/{service.protocol}"
        if service.restricted and not service.sources:
            key = f"{label} from its sources"
            observed[key] = wanted[key] = "none: no address known for its hosts (closed)"
        if not service.restricted:
            for family, sample in FAMILIES.items():
                probe(f"{label} from anywhere ({family})", service, sample, "accepted")
            continue
        for source in service.sources:
            sample = _sample(source) if "/" in source else source
            probe(f"{label} from {source}", service, sample, "accepted")
        for candidates in OUTSIDE.values():
            outside = next((a for a in candidates if not _inside(a, service.sources)), None)
            if outside:
                probe(f"{label} from elsewhere ({outside})", service, outside, "dropped")
    if not wanted:
        groups = ", ".join(placement.group_names) or "none"
        expect.equal("none", "none", f"services opened by this host's groups ({groups})")
        return
    expect.each_equal(observed, wanted)


def _essential(rule):
    """An accept rule the host itself needs: loopback, replies, ICMP."""
    for match in rule.matches:
        if match.op == "!=":
            continue
        if match.left in ("meta iifname", "meta iif") and match.right == {"lo"}:
            return True
        if match.left == "ct state" and match.right <= {"established", "related"}:
            return True
        if match.left in ("icmp type", "icmpv6 type"):
            return True
        if match.left in ("meta l4proto", "ip protocol", "ip6 nexthdr") and match.right <= {
            "icmp",
            "ipv6-icmp",
        }:
            return True
    return False


@pytest.mark.controls("CG-FW-004")
def test_no_unapproved_port_open(facts, expect, param, placement):
    """Every accept rule of an input chain serves the host's own needs (loopback, replies,
    ICMP) or opens an approved port."""
    approved = {("tcp", str(param("CG-FW-004", "ssh_port")))}
    approved |= {(s.protocol, str(s.port)) for s in _services(param, placement)}
    if optional(param, "CG-FW-003", "dhcpv6_client", True):
        approved.add(("udp", "546"))
    unexpected = []
    for chain in _ruleset(facts).base_chains("input"):
        for rule in chain.rules:
            if rule.verdict != "accept" or _essential(rule):
                continue
            where = f"{chain.label} rule {rule.position}"
            ports = [m for m in rule.matches if m.left in PORT_FIELDS and m.op != "!="]
            if not ports:
                unexpected.append(f"every port: {rule.text()} ({where})")
                continue
            protocol = ports[0].left.split()[0]
            protocols = ("tcp", "udp") if protocol == "th" else (protocol,)
            unexpected += [
                f"{protocol} {value} ({where})"
                for value in sorted(ports[0].right)
                if not any((p, value) in approved for p in protocols)
            ]
    expect.equal("; ".join(unexpected) or "none", "none", "ports open beyond the approved ones")
