"""The lab's private network: one Linux bridge with a ULA IPv6 /64 and a lab-only IPv4 /24.

Nothing is routed or NATed: hosts reach each other and this machine over the bridge, and
nothing else. The bridge ignores router advertisements so the lab's radvd can never change
this machine's own routes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cityguard.lab.command import LabError, run

# RFC 2544 benchmarking range: never routed on the internet, so lab addresses exist only here.
IPV4_POOL = ipaddress.IPv4Network("198.18.0.0/15")
FIRST_HOST_OFFSET = 10


@dataclass(frozen=True)
class AddressPlan:
    ipv6_prefix: ipaddress.IPv6Network
    ipv4_prefix: ipaddress.IPv4Network

    @property
    def gateway_ipv6(self) -> ipaddress.IPv6Address:
        return self.ipv6_prefix[1]

    @property
    def gateway_ipv4(self) -> ipaddress.IPv4Address:
        return self.ipv4_prefix[1]

    def host_ipv6(self, index: int) -> ipaddress.IPv6Address:
        return self.ipv6_prefix[FIRST_HOST_OFFSET + index]

    def host_ipv4(self, index: int) -> ipaddress.IPv4Address:
        return self.ipv4_prefix[FIRST_HOST_OFFSET + index]


def bridge_name(lab_id: str) -> str:
    return f"cg{lab_id}br"


def plan_addresses(lab_id: str, used: list[ipaddress.IPv4Network]) -> AddressPlan:
    """A ULA prefix derived from the lab id (RFC 4193 style) and a free /24 from the pool."""
    digest = hashlib.sha256(lab_id.encode()).digest()
    global_id = int.from_bytes(digest[:5], "big") or 1  # never fd00::/8's all-zero id
    ipv6_prefix = ipaddress.IPv6Network(((0xFD << 120) | (global_id << 80) | (1 << 64), 64))
    subnets: list[ipaddress.IPv4Network] = list(IPV4_POOL.subnets(new_prefix=24))
    start = int.from_bytes(digest[5:7], "big") % len(subnets)
    for offset in range(len(subnets)):
        candidate = subnets[(start + offset) % len(subnets)]
        if not any(candidate.overlaps(net) for net in used):
            return AddressPlan(ipv6_prefix, candidate)
    raise LabError(f"no free IPv4 /24 left in {IPV4_POOL} for a lab network")


def ipv4_networks_in_use() -> list[ipaddress.IPv4Network]:
    """Networks already on this machine's interfaces, so a lab never shadows one."""
    links = json.loads(run(["ip", "-json", "-4", "addr", "show"], what="listing addresses"))
    return [
        ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
        for link in links
        for a in link.get("addr_info", [])
    ]


def create_bridge(lab_id: str, plan: AddressPlan) -> str:
    name = bridge_name(lab_id)
    run(
        ["ip", "link", "add", name, "type", "bridge", "forward_delay", "0"],
        what=f"creating bridge {name}",
    )
    # must happen before any host runs radvd, or this machine learns the lab's routes
    conf = Path("/proc/sys/net/ipv6/conf") / name
    (conf / "accept_ra").write_text("0\n")
    (conf / "autoconf").write_text("0\n")
    run(
        ["ip", "addr", "add", f"{plan.gateway_ipv6}/64", "dev", name, "nodad"],
        what=f"adding {plan.gateway_ipv6} to {name}",
    )
    run(
        ["ip", "addr", "add", f"{plan.gateway_ipv4}/24", "dev", name],
        what=f"adding {plan.gateway_ipv4} to {name}",
    )
    run(["ip", "link", "set", name, "up"], what=f"bringing {name} up")
    return name


def bridge_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def delete_bridge(name: str) -> None:
    if bridge_exists(name):
        run(["ip", "link", "delete", name], what=f"deleting bridge {name}")
