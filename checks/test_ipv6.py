"""IPv6 as the site's plan says: addresses, DAD, router advertisements, routes, reachability
across segments, DNS, services on both stacks, firewall parity and the ICMPv6 RFC 4890 needs.

The planned state is the host variable `cityguard_ipv6`, which the site's `ipv6` section gives
every run's inventory from the site's plan (src/cityguard/ipv6/hostvars.py). Without it the
checks fail, never not-applicable: a site with no `ipv6` section has no IPv6 addressing plan,
and a host the plan leaves out carries the reason in the variable (`unplanned`). Facts
come from the `ipv6-*` sections (one SSH round trip); probes that send packets (ping, a TCP
connect, a DNS lookup) run once per host in one command.

A server of an isolated segment (the plan's `isolated: true`, e.g. the recovery segment restore
drills use) is judged the other way round where routing is concerned: it has no default route,
no gateway to reach, and every server of another segment (`unreachable`) must not answer it,
neither ping nor a TCP connect. Those are real checks, not not-applicable: isolation is the
planned state, and a host that can reach production from there fails.
"""

import ipaddress
import shlex

import pytest
import testinfra

from cityguard.verify.sections.firewall import evaluate, packet_for
from cityguard.verify.sections.ipv6 import ICMPV6_REQUIRED, listens_on_ipv6, resolved_ipv6

NO_PLAN = "the site has no IPv6 addressing plan (ipv6.plan)"
PMTU_PAYLOAD = 1452  # 1500-byte packet: 1500 - 40 (IPv6 header) - 8 (ICMPv6 header)


@pytest.fixture(scope="module")
def planned(request):
    spec = request.config.getoption("hosts")
    backend = testinfra.get_host(spec).backend if spec else None
    get_variables = getattr(backend, "get_variables", None)
    plan = get_variables().get("cityguard_ipv6") if get_variables else None
    return plan


def plan_of(planned, expect):
    """The host's planned state; the check fails saying why when there is none."""
    if not planned:
        expect.fail(NO_PLAN, "no ipv6 section in the site file", "a planned IPv6 state")
    if "unplanned" in planned:
        expect.fail(planned["unplanned"], "not in the plan", "a planned IPv6 state")
    return planned


def _reach_lines(address, port, full_size):
    """Ping, optionally a full-size don't-fragment ping, and a TCP connect to one address."""
    q = shlex.quote(address)
    lines = [f"ping -6 -n -c1 -W2 {q} >/dev/null 2>&1 && echo ping {q} ok || echo ping {q} no"]
    if full_size:
        lines.append(
            f"ping -6 -n -c1 -W2 -M do -s {PMTU_PAYLOAD} {q} >/dev/null 2>&1 "
            f"&& echo pmtu {q} ok || echo pmtu {q} no"
        )
    lines.append(
        f"timeout 3 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null "
        f"&& echo tcp {q} ok || echo tcp {q} no"
    )
    return lines


def probe_command(planned):
    """The one command of the probes: ping the gateway and every peer (also full-size with
    don't-fragment) and connect to their probe port; ping and connect to every server an
    isolated host must not reach (its verdict is then expected to be "no"); resolve the host's
    name and address."""
    port = int(planned["probe_port"])
    lines = []
    targets = ([planned["gateway"]] if planned["gateway"] else []) + [
        p["address"] for p in planned["peers"]
    ]
    for address in targets:
        lines += _reach_lines(address, port, full_size=True)
    for server in planned["unreachable"]:
        lines += _reach_lines(server["address"], port, full_size=False)
    if planned["gateway"]:  # the gateway's neighbour entry as the ping above left it
        gateway = shlex.quote(planned["gateway"])
        lines.append(f"ip -6 neigh show to {gateway} | sed 's/^/neigh /'; true")
    name = shlex.quote(planned["fqdn"])
    own = shlex.quote(planned["legs"][0]["address"])
    lines.append(f"getent ahostsv6 {name} | sed 's/^/aaaa /'; true")
    lines.append(f"getent hosts {own} | sed 's/^/ptr /'; true")
    return "; ".join(lines)


def parse_probes(stdout):
    """The probe command's output: verdicts per address (ping, pmtu, tcp), and the lines of the
    lookups and the neighbour entry. An address without a verdict line is absent (None)."""
    found = {"ping": {}, "pmtu": {}, "tcp": {}, "aaaa": [], "ptr": [], "neigh": []}
    for line in stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("ping", "pmtu", "tcp"):
            address, _, verdict = rest.partition(" ")
            found[kind][address] = verdict == "ok"
        elif kind in ("aaaa", "ptr", "neigh"):
            found[kind].append(rest)
    return found


@pytest.fixture(scope="module")
def probes(request, planned):
    """The probes of `probe_command`, run on the host in one command."""
    if not planned or "unplanned" in planned:
        return {}
    spec = request.config.getoption("hosts")
    return parse_probes(testinfra.get_host(spec).run(probe_command(planned)).stdout)


def isolated_segment(plan):
    """The name of the host's segment when the plan isolates it, else None."""
    return plan["legs"][0]["segment"] if plan["isolated"] else None


def _global(facts):
    return [a for a in facts.section("ipv6-addr") if a.scope == "global"]


@pytest.mark.controls("CG-IPV6-001")
def test_planned_address_present_in_its_prefix(request, expect, planned):
    plan = plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    present = {a.address: a for a in _global(facts)}
    for leg in plan["legs"]:
        seen = present.get(leg["address"])
        inside = (
            seen is not None
            and seen.prefixlen == leg["prefixlen"]
            and ipaddress.IPv6Address(seen.address) in ipaddress.IPv6Network(leg["prefix"])
        )
        wanted = f"{leg['address']}/{leg['prefixlen']} in {leg['prefix']}"
        expect.equal(wanted if inside else (seen.text if seen else None), wanted, leg["segment"])


@pytest.mark.controls("CG-IPV6-002")
def test_no_tentative_or_dadfailed_address_and_dad_on(request, expect, planned):
    plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    bad = sorted(a.text for a in facts.section("ipv6-addr") if a.flags & {"tentative", "dadfailed"})
    expect.equal(bad, [], "tentative or dadfailed addresses")
    interfaces = sorted({a.interface for a in _global(facts)})
    for name in interfaces:
        accept_dad = facts.sysctl_runtime.get(f"net.ipv6.conf.{name}.accept_dad")
        transmits = facts.sysctl_runtime.get(f"net.ipv6.conf.{name}.dad_transmits")
        expect.one_of(accept_dad, ["1", "2"], f"{name} accept_dad")
        expect.one_of(transmits, [str(n) for n in range(1, 11)], f"{name} dad_transmits")


@pytest.mark.controls("CG-IPV6-003")
def test_no_temporary_addresses_and_router_advertisements_as_planned(request, expect, planned):
    plan = plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    temporary = sorted(a.text for a in facts.section("ipv6-addr") if "temporary" in a.flags)
    expect.equal(temporary, [], "temporary (privacy) addresses")
    for name in sorted({a.interface for a in _global(facts)}):
        tempaddr = facts.sysctl_runtime.get(f"net.ipv6.conf.{name}.use_tempaddr")
        expect.one_of(tempaddr, ["0", "-1"], f"{name} use_tempaddr")
        accept_ra = facts.sysctl_runtime.get(f"net.ipv6.conf.{name}.accept_ra")
        expect.equal(accept_ra, str(plan["accept_ra"]), f"{name} accept_ra")


@pytest.mark.controls("CG-IPV6-004")
def test_default_route_via_planned_gateway(request, expect, planned):
    plan = plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    if plan["role"] == "router":
        expect.not_applicable("a router of the plan is the segments' gateway itself")
    defaults = sorted(
        str(r.get("gateway")) for r in facts.section("ipv6-route") if r.get("dst") == "default"
    )
    segment = isolated_segment(plan)
    if segment is not None:  # no gateway by design: any default route is a way out
        expect.equal(defaults, [], f"default routes (segment '{segment}' is isolated)")
        return
    expect.equal(defaults, [plan["gateway"]], "default routes (gateway)")


@pytest.mark.controls("CG-IPV6-005")
def test_gateway_reachable_and_neighbour_usable(expect, planned, probes):
    plan = plan_of(planned, expect)
    if plan["role"] == "router":
        expect.not_applicable("a router of the plan is the segments' gateway itself")
    segment = isolated_segment(plan)
    if segment is not None:
        expect.not_applicable(f"segment '{segment}' is isolated: it has no gateway by design")
    gateway = plan["gateway"]
    expect.equal(probes["ping"].get(gateway), True, f"ping -6 {gateway}")
    # read after the ping (a fresh host has no entry before any traffic): `ip -6 neigh show to
    # GW` lines end with the entry's states (REACHABLE, STALE, ... or FAILED, INCOMPLETE)
    states = [
        "/".join(w for w in line.split() if w.isupper())
        for line in probes["neigh"]
        if line.split()[:1] == [gateway]
    ]
    usable = [s for s in states if not {"FAILED", "INCOMPLETE"} & set(s.split("/"))]
    expect.equal(bool(usable), True, f"neighbour entry of {gateway}: {states or 'none'}")


@pytest.mark.controls("CG-IPV6-006")
def test_hosts_on_other_segments_reachable(expect, planned, probes):
    plan = plan_of(planned, expect)
    segment = isolated_segment(plan)
    if segment is not None:  # the other way round: nothing outside the segment answers
        if not plan["unreachable"]:
            expect.not_applicable(
                f"segment '{segment}' is isolated and the plan has no server in another segment"
            )
        for server in plan["unreachable"]:
            expect.equal(
                probes["ping"].get(server["address"]), False, f"ping -6 {server['host']} (isolated)"
            )
        return
    if not plan["peers"]:
        expect.not_applicable("the plan has no server in another segment")
    for peer in plan["peers"]:
        expect.equal(probes["ping"].get(peer["address"]), True, f"ping -6 {peer['host']}")


def out_of_dns_reach(plan, expect):
    """An isolated host cannot reach the site's DNS server (another segment): its lookups
    cannot be judged on it; the other hosts resolve its records."""
    segment = isolated_segment(plan)
    if segment:
        expect.not_applicable(
            f"segment '{segment}' is isolated: the site's DNS server is out of its reach "
            "(its AAAA and PTR records are served to the other segments)"
        )


@pytest.mark.controls("CG-IPV6-007")
def test_aaaa_resolves_to_planned_address(expect, planned, probes):
    plan = plan_of(planned, expect)
    out_of_dns_reach(plan, expect)
    found = resolved_ipv6(probes["aaaa"])
    expect.equal(sorted(found), sorted(leg["address"] for leg in plan["legs"][:1]), plan["fqdn"])


@pytest.mark.controls("CG-IPV6-008")
def test_ptr_matches(expect, planned, probes):
    plan = plan_of(planned, expect)
    out_of_dns_reach(plan, expect)
    names = sorted({n for line in probes["ptr"] for n in line.split()[1:]})
    expect.equal(plan["fqdn"] in names, True, f"PTR of {plan['legs'][0]['address']}: {names}")


@pytest.mark.controls("CG-IPV6-009")
def test_services_listen_on_ipv6(request, expect, planned):
    plan = plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    listeners = facts.section("tcp-listeners")
    port = int(plan["probe_port"])
    expect.equal(listens_on_ipv6(listeners, port), True, f"TCP {port} on IPv6")
    v4_only = sorted(
        {
            p
            for h, p in listeners
            if "." in h and h != "127.0.0.1" and not listens_on_ipv6(listeners, p)
        }
    )
    expect.equal(v4_only, [], "ports listening on IPv4 only")


@pytest.mark.controls("CG-IPV6-010")
def test_service_reachable_over_ipv6_from_this_host(expect, planned, probes):
    plan = plan_of(planned, expect)
    segment = isolated_segment(plan)
    if segment is not None:  # the other way round: no service outside the segment connects
        if not plan["unreachable"]:
            expect.not_applicable(
                f"segment '{segment}' is isolated and the plan has no server in another segment"
            )
        for server in plan["unreachable"]:
            expect.equal(
                probes["tcp"].get(server["address"]),
                False,
                f"TCP {plan['probe_port']} on {server['host']} [{server['address']}] (isolated)",
            )
        return
    if not plan["peers"]:
        expect.not_applicable("the plan has no server in another segment")
    for peer in plan["peers"]:
        expect.equal(
            probes["tcp"].get(peer["address"]),
            True,
            f"TCP {plan['probe_port']} on {peer['host']} [{peer['address']}]",
        )


def _accepted_ports(ruleset, family):
    """The ports a new TCP/UDP packet from an outside address of the family is accepted on."""
    source = "2001:db8::10" if family == "ipv6" else "192.0.2.10"
    candidates = set()
    for chain in ruleset.chains:
        for rule in chain.rules:
            for match in rule.matches:
                if match.left.endswith("dport"):
                    candidates |= {v for v in match.right if v.isdigit()}
    accepted = set()
    for port in sorted(candidates, key=int):
        for protocol in ("tcp", "udp"):
            packet = packet_for(protocol, int(port), source, ct_state="new")
            verdicts = evaluate(ruleset, packet)
            if verdicts and all(v.accepted for v in verdicts):
                accepted.add(f"{protocol}/{port}")
    return sorted(accepted)


@pytest.mark.controls("CG-IPV6-011")
def test_firewall_parity_and_input_policy_drop(request, expect, planned):
    plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    ruleset = facts.section("system-nft")
    policies = sorted(
        f"{c.label}: {c.policy}"
        for c in ruleset.base_chains("input")
        if c.family in ("inet", "ip6")
    )
    expect.equal(
        bool(policies) and all(p.endswith(": drop") for p in policies), True, f"input {policies}"
    )
    expect.equal(_accepted_ports(ruleset, "ipv6"), _accepted_ports(ruleset, "ipv4"), "v6 = v4")


@pytest.mark.controls("CG-IPV6-012")
def test_required_icmpv6_accepted_and_full_size_packets_pass(request, expect, planned, probes):
    plan = plan_of(planned, expect)
    facts = request.getfixturevalue("facts")  # after the plan: no facts for a host outside it
    ruleset = facts.section("system-nft")
    dropped = []
    for name, number, state in ICMPV6_REQUIRED:
        packet = packet_for("icmpv6", source="fe80::10", **{"icmpv6 type": name, "ct state": state})
        packet["icmpv6 type"] = name
        verdicts = evaluate(ruleset, packet)
        if not verdicts or not all(v.accepted for v in verdicts):
            dropped.append(f"{name} ({number})")
    expect.equal(dropped, [], "RFC 4890 ICMPv6 types dropped")
    if not plan["peers"]:  # nothing to send a full-size packet to: say so, not a silent pass
        segment = isolated_segment(plan)
        why = (
            f"segment '{segment}' is isolated: it has no route to another segment"
            if segment is not None
            else "the plan has no server in another segment"
        )
        expect.equal(plan["peers"], [], f"peers for the 1500-byte DF ping, none sent ({why})")
    for peer in plan["peers"]:
        expect.equal(
            probes["pmtu"].get(peer["address"]), True, f"1500-byte DF ping to {peer['host']}"
        )
