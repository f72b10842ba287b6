"""The lab's private networks: one Linux bridge per network segment, each with a lab-only IPv4 /24.

A site whose areas say which segments its hosts sit on (the IPv6 plan does) gets one bridge per
segment; hosts attach to the bridges of their segments (a router to several), and this machine,
the control node, has the first address of every bridge so it manages every host over IPv4.
Nothing is routed or NATed on this machine: a host reaches the hosts of its own segments, and
the hosts of other segments only through a router host of the lab. A segment without a router
host (a recovery segment) therefore has no route to any other. The bridges ignore router
advertisements, so the lab's radvd can never change this machine's own routes.
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
#: The network of hosts that no area places on a segment.
DEFAULT_NETWORK = "lab"


@dataclass(frozen=True)
class LabNetwork:
    """One bridge: the segment it stands for and its IPv4 /24 (this machine holds ``.1``)."""

    name: str
    bridge: str
    ipv4_prefix: str

    @property
    def prefix(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.ipv4_prefix)

    @property
    def control_address(self) -> ipaddress.IPv4Address:
        return self.prefix[1]

    def host_address(self, index: int) -> ipaddress.IPv4Address:
        return self.prefix[FIRST_HOST_OFFSET + index]


def bridge_name(lab_id: str, index: int) -> str:
    return f"cg{lab_id}n{index}"


def plan_networks(
    lab_id: str, names: list[str], used: list[ipaddress.IPv4Network]
) -> list[LabNetwork]:
    """A free /24 of the pool for each named network, starting where the lab id points."""
    digest = hashlib.sha256(lab_id.encode()).digest()
    subnets: list[ipaddress.IPv4Network] = list(IPV4_POOL.subnets(new_prefix=24))
    start = int.from_bytes(digest[:2], "big") % len(subnets)
    ordered = [subnets[(start + offset) % len(subnets)] for offset in range(len(subnets))]
    free = iter([c for c in ordered if not any(c.overlaps(net) for net in used)])
    networks = []
    for index, name in enumerate(names):
        prefix = next(free, None)
        if prefix is None:
            raise LabError(f"no free IPv4 /24 left in {IPV4_POOL} for lab network {name}")
        networks.append(LabNetwork(name, bridge_name(lab_id, index), str(prefix)))
    return networks


def ipv4_networks_in_use() -> list[ipaddress.IPv4Network]:
    """Networks already on this machine's interfaces, so a lab never shadows one."""
    links = json.loads(run(["ip", "-json", "-4", "addr", "show"], what="listing addresses"))
    return [
        ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
        for link in links
        for a in link.get("addr_info", [])
    ]


def create_bridge(network: LabNetwork) -> None:
    name = network.bridge
    run(
        ["ip", "link", "add", name, "type", "bridge", "forward_delay", "0"],
        what=f"creating bridge {name}",
    )
    # must happen before any host runs radvd, or this machine learns the lab's routes
    conf = Path("/proc/sys/net/ipv6/conf") / name
    (conf / "accept_ra").write_text("0\n")
    (conf / "autoconf").write_text("0\n")
    address = f"{network.control_address}/{network.prefix.prefixlen}"
    run(["ip", "addr", "add", address, "dev", name], what=f"adding {address} to {name}")
    run(["ip", "link", "set", name, "up"], what=f"bringing {name} up")


def attach(interface: str, bridge: str) -> None:
    """Make a host's veth (this machine's end) a port of the bridge and bring it up."""
    run(
        ["ip", "link", "set", interface, "master", bridge, "up"],
        what=f"attaching {interface} to {bridge}",
    )


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "delete", name], what=f"deleting {name}")
