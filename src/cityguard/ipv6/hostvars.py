"""What each host's checks and roles need from the plan: the ``cityguard_ipv6`` host variable.

Pure. The site's ``ipv6`` section contributes it to the inventory of every run (harden, check,
the rollout and its gate), so the playbook's roles and the IPv6 checks read the same planned
state: a server's address, segment prefix, gateway and whether its segment uses SLAAC; a
router's legs; the servers of other segments a host must reach (``peers``) and, for a server of
an isolated segment, those it must not reach (``unreachable``).

Reachability follows the routers: a server reaches the servers of other routed segments through
its gateway, a router the servers of the segments it has a leg in. An isolated segment has no
router, so nothing outside it reaches its servers and they reach nothing outside it: they are
nobody's peers, and every server of another segment is unreachable for them.
"""

from __future__ import annotations

from typing import Any

from cityguard.ipv6.export import fqdn
from cityguard.ipv6.plan import AddressPlan, Assignment

#: The port the reachability check connects to on another host (SSH: every server runs it).
PROBE_PORT = 22


def _server(assignment: Assignment) -> dict[str, str]:
    return {
        "host": assignment.host,
        "address": str(assignment.address),
        "segment": assignment.segment,
    }


def _reach(plan: AddressPlan, host: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(peers, unreachable) of a host: the servers it must reach, and those it must not."""
    own = plan.of_host(host)
    own_segments = {a.segment for a in own}
    isolated = {s.name for s in plan.segments if s.isolated}
    servers = [a for a in plan.assignments if a.role == "server" and a.host != host]
    if own[0].role == "router":  # directly, on its legs; never into an isolated segment
        return [_server(a) for a in servers if a.segment in own_segments], []
    elsewhere = [a for a in servers if a.segment not in own_segments]
    if own_segments & isolated:
        return [], [_server(a) for a in elsewhere]
    return [_server(a) for a in elsewhere if a.segment not in isolated], []


def host_plan(plan: AddressPlan, host: str) -> dict[str, Any]:
    """The planned state of one host of the plan (KeyError for a host the plan lacks)."""
    own = plan.of_host(host)
    if not own:
        raise KeyError(host)
    role = own[0].role
    legs = []
    for assignment in own:
        segment = plan.segment(assignment.segment)
        legs.append(
            {
                "segment": segment.name,
                "address": str(assignment.address),
                "prefix": str(segment.prefix),
                "prefixlen": segment.prefix.prefixlen,
                "gateway": None if segment.gateway is None else str(segment.gateway),
                "slaac": segment.slaac,
                "isolated": segment.isolated,
            }
        )
    peers, unreachable = _reach(plan, host)
    slaac_server = role == "server" and legs[0]["slaac"]
    return {
        "role": role,
        "fqdn": fqdn(plan, own[0]),
        "domain": plan.domain,
        "legs": legs,
        # a router is the gateway itself; a server of an isolated segment has none by design
        "gateway": None if role == "router" else legs[0]["gateway"],
        "isolated": role == "server" and legs[0]["isolated"],
        "router_legs": [leg["segment"] for leg in legs] if role == "router" else [],
        "slaac_segments": [
            {"segment": s.name, "prefix": str(s.prefix)}
            for s in plan.segments
            if s.slaac and role == "router" and s.router == host
        ],
        "accept_ra": 1 if slaac_server else 0,
        "forwarding": 1 if role == "router" else 0,
        "peers": peers,
        "unreachable": unreachable,
        "probe_port": PROBE_PORT,
        "site_prefix": str(plan.site_prefix),
    }


def unplanned(plan: AddressPlan, host: str) -> dict[str, Any]:
    """The variable of an inventory host the plan leaves out: why its checks cannot pass."""
    return {"cityguard_ipv6": {"unplanned": f"host '{host}' is not in the IPv6 plan {plan.file}"}}


def plan_hostvars(plan: AddressPlan) -> dict[str, dict[str, Any]]:
    return {host: {"cityguard_ipv6": host_plan(plan, host)} for host in plan.hosts}
