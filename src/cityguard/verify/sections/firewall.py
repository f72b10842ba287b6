"""What the firewall does to a packet, and what it should let through. `evaluate` replays a
described packet through an nftables model (`nftables.Ruleset`) the way the kernel would, so
the checks assert behaviour ("an SSH connection from an admin network is accepted"), not rule
text; `approved_services` turns the site's per-group service lists into the ports and sources
each host should open.

It registers no section: the rulesets come from `nftables`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cityguard.verify.sections.nftables import Chain, Match, Ruleset

# A packet is described by the fields a rule may test; a field absent from the description
# is unknown (e.g. conntrack state of a neighbour solicitation): a rule testing it may or may
# not match, so an accept there does not count and a drop there does.
Packet = Mapping[str, str]


def _in_network(value: str, candidates: frozenset[str]) -> bool | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    for candidate in candidates:
        try:
            if address in ipaddress.ip_network(candidate, strict=False):
                return True
        except ValueError:
            continue
    return False


def _port_in(value: str, candidates: frozenset[str]) -> bool:
    for candidate in candidates:
        low, sep, high = candidate.partition("-")
        if sep and low.isdigit() and high.isdigit() and value.isdigit():
            if int(low) <= int(value) <= int(high):
                return True
        elif candidate == value:
            return True
    return False


_PROTOCOL_OF = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp"}
_FAMILY_OF = {"ip": "ipv4", "ip6": "ipv6", "icmp": "ipv4", "icmpv6": "ipv6"}


def _implied_mismatch(left: str, packet: Packet) -> bool:
    """A payload test implies its protocol: `tcp dport` never matches a UDP packet, `ip saddr`
    never an IPv6 one, whatever the operator."""
    base = left.split()[0]
    l4proto, nfproto = packet.get("meta l4proto"), packet.get("meta nfproto")
    if base in _PROTOCOL_OF and l4proto is not None and _PROTOCOL_OF[base] != l4proto:
        return True
    return base in _FAMILY_OF and nfproto is not None and _FAMILY_OF[base] != nfproto


def _match(match: Match, packet: Packet) -> bool | None:
    """True: matches; False: does not; None: depends on something the packet leaves open."""
    if _implied_mismatch(match.left, packet):
        return False
    if match.left not in packet:
        return None
    value = packet[match.left]
    hit: bool | None
    if match.left.endswith(("saddr", "daddr")):
        hit = _in_network(value, match.right)
    elif match.left.endswith(("dport", "sport")):
        hit = _port_in(value, match.right)
    else:
        hit = value in match.right
    if hit is None:
        return None
    return (not hit) if match.op == "!=" else hit


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    chain: str
    reason: str

    def describe(self) -> str:
        return f"{'accepted' if self.accepted else 'dropped'} by {self.chain} ({self.reason})"


def _walk(ruleset: Ruleset, chain: Chain, packet: Packet, depth: int) -> Verdict | None:
    for rule in chain.rules:
        outcomes = [_match(m, packet) for m in rule.matches]
        if False in outcomes or rule.verdict is None:
            continue
        certain = None not in outcomes
        where = f"rule {rule.position}: {rule.text()}"
        if rule.verdict == "accept":
            if certain:
                return Verdict(True, chain.label, where)
        elif rule.verdict in ("drop", "reject"):
            return Verdict(False, chain.label, where)
        elif rule.verdict.startswith(("jump:", "goto:")) and depth < 16:
            target = ruleset.chain(chain.family, chain.table, rule.verdict.split(":", 1)[1])
            inner = _walk(ruleset, target, packet, depth + 1) if target else None
            if inner is not None:
                if inner.accepted and not certain:
                    continue
                return inner
            if rule.verdict.startswith("goto:") and certain:
                break
        elif rule.verdict == "return" and certain:
            return None
    return None


def evaluate(ruleset: Ruleset, packet: Packet, hook: str = "input") -> list[Verdict]:
    """The verdict of every base chain on `hook` that sees the packet (ip chains see only
    IPv4, ip6 chains only IPv6); the packet passes only if all of them accept it."""
    nfproto = packet.get("meta nfproto")
    verdicts = []
    for chain in ruleset.base_chains(hook):
        if chain.family not in ("inet", "ip", "ip6"):
            continue
        if chain.family != "inet" and _FAMILY_OF[chain.family] != (
            nfproto or _FAMILY_OF[chain.family]
        ):
            continue
        verdict = _walk(ruleset, chain, packet, 0)
        if verdict is None:
            policy = chain.policy or "accept"
            verdict = Verdict(policy == "accept", chain.label, f"policy {policy}")
        verdicts.append(verdict)
    return verdicts


def packet_for(
    protocol: str, port: int | None = None, source: str | None = None, **fields: str
) -> dict[str, str]:
    """A packet arriving on a network interface: protocol tcp/udp/icmp/icmpv6, destination
    port, source address, and further fields by their nft names (e.g. `ct state`)."""
    packet: dict[str, str] = {"meta iifname": "eth0", "meta iif": "eth0"}
    family = {"icmp": "ipv4", "icmpv6": "ipv6"}.get(protocol)
    if source is not None:
        family = "ipv6" if ":" in source else "ipv4"
        packet["ip6 saddr" if family == "ipv6" else "ip saddr"] = source
    if family:
        packet["meta nfproto"] = family
        packet["ip6 nexthdr" if family == "ipv6" else "ip protocol"] = _PROTOCOL_OF[protocol]
    packet["meta l4proto"] = _PROTOCOL_OF[protocol]
    if port is not None:
        packet[f"{protocol} dport"] = str(port)
        packet["th dport"] = str(port)
    for name, value in fields.items():
        packet[name.replace("_", " ")] = value
    return packet


# ------------------------------------------------------------------ firewall expectations


@dataclass(frozen=True)
class Service:
    """A port the firewall opens on a host, and from where (empty sources: from anywhere)."""

    name: str
    port: int
    protocol: str
    sources: tuple[str, ...]
    restricted: bool  # False: open to everyone


def host_sources(hostvars: Mapping[str, Any]) -> list[str]:
    """The addresses a host connects from: `firewall_addresses`, else an IP `ansible_host`."""
    explicit = hostvars.get("firewall_addresses")
    if explicit:
        return [str(a) for a in explicit]
    candidate = str(hostvars.get("ansible_host", ""))
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return []
    return [candidate]


def approved_services(
    services_by_group: Mapping[str, list[Mapping[str, Any]]],
    group_names: Iterable[str],
    groups: Mapping[str, list[str]],
    hostvars_of: Callable[[str], Mapping[str, Any]],
) -> list[Service]:
    """The services a host's groups open, with `from_groups` resolved to member addresses."""
    result = []
    for group in ["all", *sorted(group_names)]:
        for item in services_by_group.get(group) or []:
            sources = [str(s) for s in item.get("from") or []]
            for source_group in item.get("from_groups") or []:
                for member in groups.get(source_group, []):
                    sources += host_sources(hostvars_of(member))
            restricted = bool(item.get("from") or item.get("from_groups"))
            result.append(
                Service(
                    str(item.get("name", item["port"])),
                    int(item["port"]),
                    str(item.get("protocol", "tcp")),
                    tuple(dict.fromkeys(sources)),
                    restricted,
                )
            )
    return result
