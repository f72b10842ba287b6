"""The site's IPv6 addressing plan: read from its YAML file, checked, and resolved into addresses.

Pure: ``parse_plan`` takes the parsed file (with the line of every key) and the inventory's host
names, and returns the resolved plan or every problem at once, each located by file, line and key
(``file:line: key.path: message``). Warnings (a prefix length off a nibble boundary) do not stop
the plan; errors do.

The file (example: examples/site/ipv6-plan.yml)::

    site_prefix: fd6b:3c41:9e20::/48     # the site's prefix: a /48, or at least a /56
    domain: ventspils.example.internal   # forward DNS zone of the AAAA records
    location_bits: 8                     # optional; default half the bits down to the /64s
    locations:
      - name: city-hall                  # location first, then segment: nibble-aligned /64s
        number: 1
        segments:
          - {name: public, number: 1, vlan: 110, purpose: web servers}
          - {name: staff, number: 3, slaac: true, purpose: workstations (SLAAC)}
          - {name: recovery, number: 4, isolated: true, purpose: restore targets (no router)}
    hosts:                               # servers: one static address each
      web1: {segment: public}
      db1: {segment: data, interface_id: "::d:1"}
      scratch1: {segment: recovery}
    routers:                             # routers: a leg (the segment's gateway) in each
      router1: {segments: [public, data, staff]}

A segment's /64 is ``site_prefix + (location number << segment bits | segment number)``, unless
it names its own ``prefix``. A server's interface id is the one it names, else a deterministic one
from its name (so adding a host never renumbers another); a router's leg is ``::1`` of each of its
segments and is that segment's gateway.

Every segment has exactly one router, except an ``isolated`` one, which has none: no gateway and
so no route to any other segment, by design (the recovery segment a restore drill's scratch
host sits on must not reach the production systems it restores). A router may not have a leg
in an isolated segment, and an isolated segment cannot use SLAAC (no router would advertise
its prefix).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from cityguard.config.errors import ConfigProblem, KeyPath
from cityguard.config.yaml_lines import YamlDocument

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
SEGMENT_LENGTH = 64
LONGEST_SITE_PREFIX = 56
#: Interface ids ::0 (subnet-router anycast, RFC 4291) to ::ff: the gateway (::1) and network
#: infrastructure. Servers never take one of them.
INFRASTRUCTURE_END = 0xFF
#: The reserved subnet anycast interface ids of RFC 2526 (the highest 128 of a /64).
ANYCAST_START = 0xFDFF_FFFF_FFFF_FF80
ANYCAST_END = 0xFDFF_FFFF_FFFF_FFFF
GATEWAY_ID = 1

PLAN_KEYS = ("site_prefix", "domain", "location_bits", "locations", "hosts", "routers")
LOCATION_KEYS = ("name", "number", "segments")
SEGMENT_KEYS = ("name", "number", "vlan", "purpose", "slaac", "isolated", "prefix")
HOST_KEYS = ("segment", "interface_id", "address")
ROUTER_KEYS = ("segments",)


@dataclass(frozen=True)
class Reserved:
    """A range of a segment's addresses no server may take, and why."""

    first: ipaddress.IPv6Address
    last: ipaddress.IPv6Address
    purpose: str


@dataclass(frozen=True)
class Assignment:
    """One planned static address: a server's, or a router's leg in a segment."""

    host: str
    segment: str
    address: ipaddress.IPv6Address
    role: str  # "server" or "router"

    @property
    def interface_id(self) -> str:
        """The low 64 bits, written as an address (``::d:1``)."""
        return str(ipaddress.IPv6Address(int(self.address) & ((1 << 64) - 1)))


@dataclass(frozen=True)
class Segment:
    """A resolved segment. ``gateway`` and ``router`` are None exactly when it is isolated."""

    location: str
    name: str
    prefix: ipaddress.IPv6Network
    gateway: ipaddress.IPv6Address | None
    router: str | None
    slaac: bool
    vlan: int | None
    purpose: str
    reserved: tuple[Reserved, ...]
    isolated: bool = False

    @property
    def label(self) -> str:
        return f"{self.location}/{self.name}"


@dataclass(frozen=True)
class AddressPlan:
    """The resolved plan: segments in location then segment order, and every static address."""

    file: str
    site_prefix: ipaddress.IPv6Network
    domain: str
    location_bits: int
    segments: tuple[Segment, ...]
    assignments: tuple[Assignment, ...]
    warnings: tuple[ConfigProblem, ...] = ()

    def segment(self, name: str) -> Segment:
        for segment in self.segments:
            if segment.name == name:
                return segment
        raise KeyError(name)

    def of_host(self, host: str) -> list[Assignment]:
        return [a for a in self.assignments if a.host == host]

    @property
    def hosts(self) -> list[str]:
        """Every planned host (servers and routers), in name order."""
        return sorted({a.host for a in self.assignments})

    @property
    def routers(self) -> list[str]:
        return sorted({a.host for a in self.assignments if a.role == "router"})


@dataclass
class PlanProblems:
    """Problems found so far: errors stop the plan, warnings are shown with it."""

    doc: YamlDocument
    errors: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(self.doc.problem(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(self.doc.problem(path, f"warning: {message}"))


class PlanError(Exception):
    """The plan has errors; ``problems`` lists every one, ``warnings`` what else was seen."""

    def __init__(self, problems: list[ConfigProblem], warnings: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
        self.warnings = warnings


# ------------------------------------------------------------------ reading values


def _is_ipv4_text(text: str) -> bool:
    try:
        ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return False
    return True


def _ipv6_prefix(found: PlanProblems, path: KeyPath, value: Any) -> ipaddress.IPv6Network | None:
    if not isinstance(value, str) or not value.strip():
        found.error(path, "must be an IPv6 prefix such as fd6b:3c41:9e20::/48")
        return None
    text = value.strip()
    if _is_ipv4_text(text):
        found.error(path, f"'{text}' is IPv4; an IPv6 prefix is expected")
        return None
    if "/" not in text:
        found.error(path, f"'{text}' has no prefix length (write it as address/length)")
        return None
    try:
        return ipaddress.IPv6Network(text)
    except ipaddress.NetmaskValueError:
        found.error(path, f"'{text}' has an invalid prefix length")
    except ValueError:
        try:
            network = ipaddress.IPv6Network(text, strict=False)
        except ValueError:
            found.error(path, f"'{text}' is not an IPv6 prefix")
            return None
        found.error(path, f"'{text}' has host bits set (the prefix is {network})")
    return None


def _ipv6_address(found: PlanProblems, path: KeyPath, value: Any) -> ipaddress.IPv6Address | None:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not isinstance(value, str) or not text:
        found.error(path, "must be an IPv6 address such as fd6b:3c41:9e20:101::10")
        return None
    if _is_ipv4_text(text):
        found.error(path, f"'{text}' is IPv4; an IPv6 address is expected")
        return None
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        found.error(path, f"'{text}' is not an IPv6 address")
        return None


def _interface_id(found: PlanProblems, path: KeyPath, value: Any) -> int | None:
    address = _ipv6_address(found, path, value)
    if address is None:
        return None
    number = int(address)
    if number >> 64:
        found.error(path, f"'{value}' is longer than an interface id (64 bits, e.g. ::d:1)")
        return None
    return number


def _keys(found: PlanProblems, path: KeyPath, value: Any, allowed: tuple[str, ...]) -> bool:
    """A mapping with only allowed keys (unknown ones reported); False when not a mapping."""
    if not isinstance(value, dict):
        found.error(path, "must be a mapping")
        return False
    for key in value:
        if key not in allowed:
            found.error((*path, str(key)), f"unknown key (allowed: {', '.join(allowed)})")
    return True


def _name(found: PlanProblems, path: KeyPath, value: Any) -> str | None:
    if not isinstance(value, str) or not NAME.match(value):
        found.error(path, "must be a name: lowercase letters, digits and '-' (at most 63)")
        return None
    return value


def _number(found: PlanProblems, path: KeyPath, value: Any, bits: int, what: str) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        found.error(path, f"must be a whole number (the {what}'s place in the plan)")
        return None
    if not 0 <= value < (1 << bits):
        found.error(
            path, f"{what} number {value} does not fit in {bits} bits (0-{(1 << bits) - 1})"
        )
        return None
    return value


def default_location_bits(site_length: int) -> int:
    """Half the bits between the site prefix and the /64s, down to a whole nibble."""
    free = SEGMENT_LENGTH - site_length
    return max(free // 2 // 4 * 4, min(4, free // 2))


def derived_interface_id(host: str) -> int:
    """A server's default interface id, from its name alone: the same on every run and host
    list, clear of the reserved ranges; two names that meet are reported as a duplicate."""
    number = int.from_bytes(hashlib.sha256(host.encode()).digest()[:4], "big")
    return number if number > INFRASTRUCTURE_END else number + 0x100


def reserved_ranges(prefix: ipaddress.IPv6Network) -> tuple[Reserved, ...]:
    base = int(prefix.network_address)
    return (
        Reserved(
            ipaddress.IPv6Address(base),
            ipaddress.IPv6Address(base + INFRASTRUCTURE_END),
            "subnet-router anycast (::0), gateway (::1) and network infrastructure",
        ),
        Reserved(
            ipaddress.IPv6Address(base + ANYCAST_START),
            ipaddress.IPv6Address(base + ANYCAST_END),
            "reserved subnet anycast (RFC 2526)",
        ),
    )


def _reserved_id(number: int) -> bool:
    return number <= INFRASTRUCTURE_END or ANYCAST_START <= number <= ANYCAST_END


# ------------------------------------------------------------------ the plan


@dataclass
class _SegmentSpec:
    location: str
    name: str
    path: KeyPath
    prefix: ipaddress.IPv6Network | None  # None: wrong, and reported; the segment still exists
    slaac: bool
    vlan: int | None
    purpose: str
    isolated: bool = False


def parse_plan(doc: YamlDocument, inventory_hosts: Collection[str]) -> AddressPlan:
    """The resolved plan of ``doc``, or PlanError with every problem found."""
    found = PlanProblems(doc)
    data = doc.data
    if not _keys(found, (), data, PLAN_KEYS):
        raise PlanError(found.errors, found.warnings)
    for key in ("site_prefix", "domain", "locations"):
        if key not in data:
            found.error((), f"required key '{key}' is missing")
    site = _site_prefix(found, data)
    domain = data.get("domain")
    if "domain" in data and (not isinstance(domain, str) or not DOMAIN.match(domain.rstrip("."))):
        found.error(("domain",), "must be a DNS domain name such as ventspils.example.internal")
    location_bits = _location_bits(found, data, site)
    segments = _segments(found, data.get("locations"), site, location_bits)
    by_name = {s.name: s for s in segments}
    routers = _routers(found, data.get("routers"), by_name, inventory_hosts)
    servers = _servers(found, data.get("hosts"), by_name, inventory_hosts, routers)
    resolved = _resolve_segments(found, segments, routers)
    assignments = _assignments(found, resolved, routers, servers)
    if found.errors or site is None or not isinstance(domain, str):
        raise PlanError(found.errors, found.warnings)
    return AddressPlan(
        doc.file,
        site,
        domain.rstrip("."),
        location_bits,
        tuple(resolved),
        tuple(assignments),
        tuple(found.warnings),
    )


def _site_prefix(found: PlanProblems, data: Mapping[str, Any]) -> ipaddress.IPv6Network | None:
    if "site_prefix" not in data:
        return None
    site = _ipv6_prefix(found, ("site_prefix",), data["site_prefix"])
    if site is None:
        return None
    if site.prefixlen > LONGEST_SITE_PREFIX:
        found.error(
            ("site_prefix",),
            f"a site prefix must be a /48 or at least a /56 to hold its /64 segments, "
            f"got /{site.prefixlen}",
        )
        return None
    if site.prefixlen % 4:
        found.warn(
            ("site_prefix",),
            f"/{site.prefixlen} is not on a nibble boundary (a multiple of 4): addresses and "
            "reverse DNS zones do not split on hex digits",
        )
    if not site.subnet_of(ipaddress.IPv6Network("fc00::/7")) and not site.is_global:
        found.error(("site_prefix",), f"{site} is neither unique local (fc00::/7) nor global")
        return None
    return site


def _location_bits(
    found: PlanProblems, data: Mapping[str, Any], site: ipaddress.IPv6Network | None
) -> int:
    if site is None:
        return 0
    free = SEGMENT_LENGTH - site.prefixlen
    if "location_bits" not in data:
        return default_location_bits(site.prefixlen)
    value = data["location_bits"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < free:
        found.error(
            ("location_bits",),
            f"must be a whole number from 0 to {free - 1} (the site prefix leaves {free} bits "
            "for locations and segments)",
        )
        return default_location_bits(site.prefixlen)
    if value % 4 or (free - value) % 4:
        found.warn(
            ("location_bits",),
            f"{value} location bits and {free - value} segment bits: a segment's /64 is not "
            "location then segment on nibble boundaries",
        )
    return value


def _segments(
    found: PlanProblems,
    locations: Any,
    site: ipaddress.IPv6Network | None,
    location_bits: int,
) -> list[_SegmentSpec]:
    if locations is None:
        return []
    if not isinstance(locations, list) or not locations:
        found.error(("locations",), "must be a list of at least one location")
        return []
    segment_bits = SEGMENT_LENGTH - site.prefixlen - location_bits if site else 0
    result: list[_SegmentSpec] = []
    location_names: dict[str, int] = {}
    location_numbers: dict[int, str] = {}
    segment_names: dict[str, str] = {}
    for li, location in enumerate(locations):
        lpath: KeyPath = ("locations", li)
        if not _keys(found, lpath, location, LOCATION_KEYS):
            continue
        lname = _name(found, (*lpath, "name"), location.get("name"))
        if lname is not None:
            if lname in location_names:
                found.error((*lpath, "name"), f"location '{lname}' is already defined")
            location_names.setdefault(lname, li)
        lnumber = None
        if "number" not in location:
            found.error(lpath, "required key 'number' is missing")
        elif site is not None:
            lnumber = _number(
                found, (*lpath, "number"), location["number"], location_bits, "location"
            )
            if lnumber is not None:
                if lnumber in location_numbers:
                    found.error(
                        (*lpath, "number"),
                        f"location number {lnumber} is already location "
                        f"'{location_numbers[lnumber]}'",
                    )
                location_numbers.setdefault(lnumber, lname or "?")
        segments = location.get("segments")
        if not isinstance(segments, list) or not segments:
            found.error((*lpath, "segments"), "must be a list of at least one segment")
            continue
        for si, segment in enumerate(segments):
            spath: KeyPath = (*lpath, "segments", si)
            spec = _segment(found, spath, segment, site, lnumber, segment_bits, lname or "?")
            if spec is None:
                continue
            if spec.name in segment_names:
                found.error(
                    (*spath, "name"),
                    f"segment '{spec.name}' is already defined in location "
                    f"'{segment_names[spec.name]}'",
                )
                continue
            segment_names[spec.name] = spec.location
            for other in result:
                if spec.prefix and other.prefix and spec.prefix.overlaps(other.prefix):
                    found.error(
                        (*spath, "prefix") if "prefix" in segment else (*spath, "number"),
                        f"{spec.prefix} overlaps segment '{other.name}' ({other.prefix})",
                    )
            result.append(spec)
    return result


def _segment(
    found: PlanProblems,
    path: KeyPath,
    segment: Any,
    site: ipaddress.IPv6Network | None,
    location_number: int | None,
    segment_bits: int,
    location: str,
) -> _SegmentSpec | None:
    if not _keys(found, path, segment, SEGMENT_KEYS):
        return None
    before = len(found.errors)
    name = _name(found, (*path, "name"), segment.get("name"))
    slaac = segment.get("slaac", False)
    if not isinstance(slaac, bool):
        found.error((*path, "slaac"), "must be true or false")
    isolated = segment.get("isolated", False)
    if not isinstance(isolated, bool):
        found.error((*path, "isolated"), "must be true or false")
    elif isolated and slaac is True:
        found.error(
            (*path, "slaac"),
            f"segment '{name or '?'}' is isolated: it cannot use SLAAC, no router would "
            "advertise its prefix",
        )
    vlan = segment.get("vlan")
    if vlan is not None and (
        isinstance(vlan, bool) or not isinstance(vlan, int) or not 1 <= vlan <= 4094
    ):
        found.error((*path, "vlan"), "must be a VLAN id from 1 to 4094")
    purpose = segment.get("purpose", "")
    if not isinstance(purpose, str):
        found.error((*path, "purpose"), "must be text")
    prefix: ipaddress.IPv6Network | None = None
    if "prefix" in segment:
        prefix = _ipv6_prefix(found, (*path, "prefix"), segment["prefix"])
        if prefix is not None and prefix.prefixlen != SEGMENT_LENGTH:
            found.error(
                (*path, "prefix"), f"a segment prefix must be a /64, got /{prefix.prefixlen}"
            )
            prefix = None
        if prefix is not None and site is not None and not prefix.subnet_of(site):
            found.error((*path, "prefix"), f"{prefix} is outside the site prefix {site}")
            prefix = None
    elif "number" not in segment:
        found.error(path, "required key 'number' is missing (or give the segment its prefix)")
    elif site is not None:
        number = _number(found, (*path, "number"), segment["number"], segment_bits, "segment")
        if number is not None and location_number is not None:
            index = (location_number << segment_bits) | number
            base = int(site.network_address) | (index << (128 - SEGMENT_LENGTH))
            prefix = ipaddress.IPv6Network((base, SEGMENT_LENGTH))
    if name is None:
        return None
    if len(found.errors) > before:
        prefix = None
    return _SegmentSpec(
        location,
        name,
        path,
        prefix,
        bool(slaac),
        vlan if isinstance(vlan, int) else None,
        purpose if isinstance(purpose, str) else "",
        isolated is True,
    )


def _segment_refs(
    found: PlanProblems, path: KeyPath, value: Any, segments: Mapping[str, _SegmentSpec]
) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        found.error(path, "must name a segment (or a list of segments)")
        return []
    known = []
    for index, name in enumerate(names):
        where = path if isinstance(value, str) else (*path, index)
        if name not in segments:
            found.error(where, f"segment '{name}' is not defined in the plan's locations")
        elif name in known:
            found.error(where, f"segment '{name}' is listed twice")
        else:
            known.append(name)
    return known


def _routers(
    found: PlanProblems,
    routers: Any,
    segments: Mapping[str, _SegmentSpec],
    inventory_hosts: Collection[str],
) -> dict[str, list[str]]:
    """Router -> the segments it has a leg in."""
    if routers is None:
        return {}
    if not isinstance(routers, dict):
        found.error(("routers",), "must be a mapping of router host -> its segments")
        return {}
    result: dict[str, list[str]] = {}
    for host, spec in routers.items():
        path: KeyPath = ("routers", str(host))
        if str(host) not in inventory_hosts:
            found.error(path, f"host '{host}' is not in the inventory")
        if not _keys(found, path, spec, ROUTER_KEYS):
            continue
        if "segments" not in spec:
            found.error(path, "required key 'segments' is missing")
            continue
        legs = _segment_refs(found, (*path, "segments"), spec["segments"], segments)
        result[str(host)] = _without_isolated(found, str(host), spec["segments"], legs, segments)
    return result


def _without_isolated(
    found: PlanProblems,
    host: str,
    value: Any,
    legs: list[str],
    segments: Mapping[str, _SegmentSpec],
) -> list[str]:
    """A router's legs (``value`` as written, ``legs`` the valid ones) without those in isolated
    segments, each reported where it is listed: a router there would be the gateway the segment
    must not have, and its leg the route out that isolation rules out."""
    path: KeyPath = ("routers", host, "segments")
    kept = []
    for name in legs:
        if not segments[name].isolated:
            kept.append(name)
            continue
        where = path if isinstance(value, str) else (*path, value.index(name))
        found.error(
            where, f"segment '{name}' is isolated: router '{host}' may not have a leg in it"
        )
    return kept


@dataclass
class _ServerSpec:
    host: str
    segment: str
    path: KeyPath
    interface_id: int | None = None
    address: ipaddress.IPv6Address | None = None


def _servers(
    found: PlanProblems,
    hosts: Any,
    segments: Mapping[str, _SegmentSpec],
    inventory_hosts: Collection[str],
    routers: Mapping[str, list[str]],
) -> list[_ServerSpec]:
    if hosts is None:
        return []
    if not isinstance(hosts, dict):
        found.error(("hosts",), "must be a mapping of host -> its segment")
        return []
    result = []
    for host, spec in hosts.items():
        path: KeyPath = ("hosts", str(host))
        if str(host) not in inventory_hosts:
            found.error(path, f"host '{host}' is not in the inventory")
        if str(host) in routers:
            found.error(path, f"host '{host}' is a router of the plan; list it only under routers")
        if not _keys(found, path, spec, HOST_KEYS):
            continue
        if "segment" not in spec:
            found.error(path, "required key 'segment' is missing")
            continue
        if not isinstance(spec["segment"], str):
            found.error((*path, "segment"), "must name one segment: a server sits in one")
            continue
        names = _segment_refs(found, (*path, "segment"), spec["segment"], segments)
        if not names:
            continue
        server = _ServerSpec(str(host), names[0], path)
        if "interface_id" in spec and "address" in spec:
            found.error(path, "give interface_id or address, not both")
            continue
        if "interface_id" in spec:
            number = _interface_id(found, (*path, "interface_id"), spec["interface_id"])
            if number is not None and _reserved_id(number):
                found.error(
                    (*path, "interface_id"),
                    f"interface id {ipaddress.IPv6Address(number)} is in a reserved range "
                    "(::-::ff gateway and infrastructure, or the RFC 2526 anycast ids)",
                )
                number = None
            server.interface_id = number
        if "address" in spec:
            server.address = _ipv6_address(found, (*path, "address"), spec["address"])
        result.append(server)
    return result


def _resolve_segments(
    found: PlanProblems, segments: list[_SegmentSpec], routers: Mapping[str, list[str]]
) -> list[Segment]:
    result = []
    for spec in segments:
        if spec.prefix is None:
            continue
        if spec.isolated:  # a router listing it was reported and its leg dropped
            result.append(
                Segment(
                    spec.location,
                    spec.name,
                    spec.prefix,
                    None,
                    None,
                    spec.slaac,
                    spec.vlan,
                    spec.purpose,
                    reserved_ranges(spec.prefix),
                    isolated=True,
                )
            )
            continue
        owners = sorted(r for r, legs in routers.items() if spec.name in legs)
        if not owners:
            found.error(
                spec.path,
                f"segment '{spec.name}' has no gateway: no router of the plan has a leg in it",
            )
            continue
        if len(owners) > 1:
            found.error(
                spec.path,
                f"segment '{spec.name}' has {len(owners)} routers ({', '.join(owners)}); "
                "the plan gives each segment one gateway",
            )
            continue
        gateway = spec.prefix.network_address + GATEWAY_ID
        result.append(
            Segment(
                spec.location,
                spec.name,
                spec.prefix,
                gateway,
                owners[0],
                spec.slaac,
                spec.vlan,
                spec.purpose,
                reserved_ranges(spec.prefix),
            )
        )
    # location then segment: the order of the addresses themselves
    return sorted(result, key=lambda s: int(s.prefix.network_address))


def _assignments(
    found: PlanProblems,
    segments: list[Segment],
    routers: Mapping[str, list[str]],
    servers: list[_ServerSpec],
) -> list[Assignment]:
    by_name = {s.name: s for s in segments}
    result: list[Assignment] = []
    taken: dict[ipaddress.IPv6Address, str] = {}
    for segment in segments:
        if segment.router is None or segment.gateway is None:
            continue  # isolated: no router, no gateway
        assignment = Assignment(segment.router, segment.name, segment.gateway, "router")
        taken[segment.gateway] = f"{segment.router} (gateway of '{segment.name}')"
        result.append(assignment)
    for server in servers:
        if server.segment not in by_name:
            continue  # the segment itself was reported
        segment = by_name[server.segment]
        if server.address is not None:
            address = server.address
            if address not in segment.prefix:
                found.error(
                    (*server.path, "address"),
                    f"{address} is outside segment '{segment.name}' ({segment.prefix})",
                )
                continue
            if _reserved_id(int(address) & ((1 << 64) - 1)):
                found.error(
                    (*server.path, "address"),
                    f"{address} is in a reserved range of segment '{segment.name}'",
                )
                continue
            key: KeyPath = (*server.path, "address")
        else:
            number = server.interface_id
            if number is None:
                number = derived_interface_id(server.host)
            address = segment.prefix.network_address + number
            key = (*server.path, "interface_id")
        if address in taken:
            found.error(key, f"address {address} is already given to {taken[address]}")
            continue
        taken[address] = server.host
        result.append(Assignment(server.host, segment.name, address, "server"))
    order = {s.name: i for i, s in enumerate(segments)}
    return sorted(result, key=lambda a: (order[a.segment], int(a.address)))
