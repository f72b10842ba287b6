"""A host's IPv6 state for the IPv6 checks, read in the same round trip as every other section:
addresses with their flags (`ip -j -6 addr`: testinfra's interface().addresses hides tentative
and dadfailed), routes (`ip -j -6 route`), neighbours (`ip -j -6 neigh`) and listening TCP
sockets (`ss -Hltn`). Probes that send packets (ping, connect) are not facts: the checks run
them, because their targets come from the site's plan.

Also pure helpers the checks share: the RFC 4890 ICMPv6 types a firewall must let through, the
planned host entry from the inventory, and the parsers of probe output.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import needs, or_error

#: RFC 4890 section 4.4.1 (traffic for the host itself that must not be dropped): the error
#: messages, echo, and the link-local configuration traffic (neighbour discovery, MLD).
#: (type name in nft, type number, the conntrack state the packet arrives in)
ICMPV6_REQUIRED: tuple[tuple[str, int, str], ...] = (
    ("destination-unreachable", 1, "related"),
    ("packet-too-big", 2, "related"),
    ("time-exceeded", 3, "related"),
    ("parameter-problem", 4, "related"),
    ("echo-request", 128, "new"),
    ("echo-reply", 129, "related"),
    ("nd-router-solicit", 133, "untracked"),
    ("nd-router-advert", 134, "untracked"),
    ("nd-neighbor-solicit", 135, "untracked"),
    ("nd-neighbor-advert", 136, "untracked"),
    ("mld-listener-query", 130, "untracked"),
    ("mld-listener-report", 131, "untracked"),
    ("mld-listener-done", 132, "untracked"),
    ("mld2-listener-report", 143, "untracked"),
)


@dataclass(frozen=True)
class Address:
    interface: str
    address: str
    prefixlen: int
    scope: str
    flags: frozenset[str]  # tentative, dadfailed, temporary, deprecated, ... as ip -j says

    @property
    def text(self) -> str:
        flags = f" [{','.join(sorted(self.flags))}]" if self.flags else ""
        return f"{self.address}/{self.prefixlen} on {self.interface}{flags}"


_FLAG_KEYS = ("tentative", "dadfailed", "temporary", "deprecated", "optimistic", "mngtmpaddr")


def parse_addresses(lines: list[str]) -> list[Address]:
    """`ip -j -6 addr show`: every IPv6 address with its interface and flags."""
    text = "\n".join(lines).strip()
    result = []
    for link in json.loads(text) if text else []:
        for info in link.get("addr_info", []):
            if info.get("family") != "inet6":
                continue
            flags = {key for key in _FLAG_KEYS if info.get(key)}
            result.append(
                Address(
                    link.get("ifname", "?"),
                    str(info["local"]),
                    int(info.get("prefixlen", 128)),
                    str(info.get("scope", "global")),
                    frozenset(flags),
                )
            )
    return result


def parse_json_list(lines: list[str]) -> list[dict[str, Any]]:
    """`ip -j ...` output: a JSON list (empty output: no entries)."""
    text = "\n".join(lines).strip()
    data = json.loads(text) if text else []
    return [dict(item) for item in data]


def parse_listeners(lines: list[str]) -> list[tuple[str, int]]:
    """`ss -Hltn`: (local address, port) of every listening TCP socket."""
    result = []
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        local = parts[3]
        host, _, port = local.rpartition(":")
        if port.isdigit():
            result.append((host.strip("[]").split("%")[0], int(port)))
    return result


def listens_on_ipv6(listeners: list[tuple[str, int]], port: int) -> bool:
    """A socket reaches IPv6 clients: bound to ::, * (dual stack) or an IPv6 address."""
    return any(p == port and (host in ("*", "::") or ":" in host) for host, p in listeners)


def is_v4_mapped(text: str) -> bool:
    try:
        return ipaddress.IPv6Address(text).ipv4_mapped is not None
    except ValueError:
        return False


def resolved_ipv6(getent_lines: list[str]) -> set[str]:
    """`getent ahostsv6 NAME` output: the IPv6 addresses, v4-mapped ones (::ffff:a.b.c.d, which
    glibc returns for names with only A records) left out."""
    found = set()
    for line in getent_lines:
        parts = line.split()
        if parts and ":" in parts[0] and not is_v4_mapped(parts[0]):
            found.add(str(ipaddress.IPv6Address(parts[0])))
    return found


IPROUTE2 = "iproute2 is not installed"
ADDR_COMMAND = needs("ip", IPROUTE2) + or_error("ip -j -6 addr show")
ROUTE_COMMAND = needs("ip", IPROUTE2) + or_error("ip -j -6 route show")
NEIGH_COMMAND = needs("ip", IPROUTE2) + or_error("ip -j -6 neigh show")
LISTENERS_COMMAND = needs("ss", IPROUTE2) + or_error("ss -Hltn")

register_section("ipv6-addr", ADDR_COMMAND, parse_addresses)
register_section("ipv6-route", ROUTE_COMMAND, parse_json_list)
register_section("ipv6-neigh", NEIGH_COMMAND, parse_json_list)
register_section("tcp-listeners", LISTENERS_COMMAND, parse_listeners)
