"""What each host's checks and roles need from the plan: the ``cityguard_ipv6`` host variable.

Pure. The site's ``ipv6`` section contributes it to the inventory of every run (harden, check,
the rollout and its gate), so the playbook's roles and the IPv6 checks read the same planned
state: a server's address, segment prefix, gateway and whether its
segment uses SLAAC; a router's legs; and the hosts of other segments a host must reach.
"""

from __future__ import annotations

from typing import Any

from cityguard.ipv6.export import fqdn
from cityguard.ipv6.plan import AddressPlan

#: The port the reachability check connects to on another host (SSH: every server runs it).
PROBE_PORT = 22


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
                "gateway": str(segment.gateway),
                "slaac": segment.slaac,
            }
        )
    own_segments = {a.segment for a in own}
    peers = [
        {"host": a.host, "address": str(a.address), "segment": a.segment}
        for a in plan.assignments
        if a.role == "server" and a.host != host and a.segment not in own_segments
    ]
    if role == "router":  # a router reaches every server on its legs directly
        peers = [
            {"host": a.host, "address": str(a.address), "segment": a.segment}
            for a in plan.assignments
            if a.role == "server"
        ]
    slaac_server = role == "server" and legs[0]["slaac"]
    return {
        "role": role,
        "fqdn": fqdn(plan, own[0]),
        "domain": plan.domain,
        "legs": legs,
        "gateway": None if role == "router" else legs[0]["gateway"],
        "router_legs": [leg["segment"] for leg in legs] if role == "router" else [],
        "slaac_segments": [
            {"segment": s.name, "prefix": str(s.prefix)}
            for s in plan.segments
            if s.slaac and role == "router" and s.router == host
        ],
        "accept_ra": 1 if slaac_server else 0,
        "forwarding": 1 if role == "router" else 0,
        "peers": peers,
        "probe_port": PROBE_PORT,
        "site_prefix": str(plan.site_prefix),
    }


def unplanned(plan: AddressPlan, host: str) -> dict[str, Any]:
    """The variable of an inventory host the plan leaves out: why its checks cannot pass."""
    return {"cityguard_ipv6": {"unplanned": f"host '{host}' is not in the IPv6 plan {plan.file}"}}


def plan_hostvars(plan: AddressPlan) -> dict[str, dict[str, Any]]:
    return {host: {"cityguard_ipv6": host_plan(plan, host)} for host in plan.hosts}
