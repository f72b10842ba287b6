"""The IPv6 plan: good plans resolve to nibble-aligned /64s and deterministic addresses; every
broken plan reports each problem at once, with file, line and key, in exactly these words."""

from __future__ import annotations

import ipaddress
import textwrap

import pytest

from cityguard.config.yaml_lines import parse_yaml
from cityguard.ipv6.plan import (
    AddressPlan,
    PlanError,
    default_location_bits,
    derived_interface_id,
    parse_plan,
)

INVENTORY = ("web1", "web2", "db1", "router1", "router2", "scratch1")

GOOD = """\
site_prefix: fd6b:3c41:9e20::/48
domain: ventspils.example.internal
locations:
  - name: city-hall
    number: 1
    segments:
      - {name: public, number: 1, vlan: 110, purpose: web}
      - {name: data, number: 2}
      - {name: staff, number: 3, slaac: true}
  - name: library
    number: 0x2a
    segments:
      - {name: branch, number: 0x10}
hosts:
  web1: {segment: public}
  db1: {segment: data, interface_id: "::d:1"}
  scratch1: {segment: data, address: "fd6b:3c41:9e20:102::1:5c"}
routers:
  router1: {segments: [public, data, staff]}
  router2: {segments: [branch]}
"""


def plan_of(text: str) -> AddressPlan:
    return parse_plan(parse_yaml(textwrap.dedent(text), "plan.yml"), INVENTORY)


def problems_of(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        plan_of(text)
    return [str(p) for p in caught.value.problems]


def test_a_good_plan_resolves_location_then_segment_on_nibbles() -> None:
    plan = plan_of(GOOD)
    assert [(s.label, str(s.prefix)) for s in plan.segments] == [
        ("city-hall/public", "fd6b:3c41:9e20:101::/64"),
        ("city-hall/data", "fd6b:3c41:9e20:102::/64"),
        ("city-hall/staff", "fd6b:3c41:9e20:103::/64"),
        ("library/branch", "fd6b:3c41:9e20:2a10::/64"),
    ]
    assert [str(s.gateway) for s in plan.segments][-1] == "fd6b:3c41:9e20:2a10::1"
    assert [s.router for s in plan.segments] == ["router1"] * 3 + ["router2"]
    assert [s.name for s in plan.segments if s.slaac] == ["staff"]
    assert plan.warnings == ()
    by_host = {(a.host, a.segment): str(a.address) for a in plan.assignments}
    assert by_host[("db1", "data")] == "fd6b:3c41:9e20:102::d:1"
    assert by_host[("scratch1", "data")] == "fd6b:3c41:9e20:102::1:5c"
    web1 = ipaddress.IPv6Address(by_host[("web1", "public")])
    assert int(web1) & 0xFFFF_FFFF == derived_interface_id("web1")
    assert plan.routers == ["router1", "router2"]
    assert plan.hosts == ["db1", "router1", "router2", "scratch1", "web1"]


def test_interface_ids_are_deterministic_and_independent_of_other_hosts() -> None:
    alone = plan_of(GOOD.replace('  db1: {segment: data, interface_id: "::d:1"}\n', ""))
    full = plan_of(GOOD)
    assert alone.of_host("web1") == full.of_host("web1")
    assert derived_interface_id("web1") == derived_interface_id("web1") > 0xFF


def test_reserved_ranges_are_the_infrastructure_ids_and_rfc2526_anycast() -> None:
    segment = plan_of(GOOD).segment("public")
    assert [(str(r.first), str(r.last)) for r in segment.reserved] == [
        ("fd6b:3c41:9e20:101::", "fd6b:3c41:9e20:101::ff"),
        ("fd6b:3c41:9e20:101:fdff:ffff:ffff:ff80", "fd6b:3c41:9e20:101:fdff:ffff:ffff:ffff"),
    ]


def test_a_56_splits_into_one_nibble_each_and_explicit_prefixes_are_kept() -> None:
    plan = plan_of(
        """\
        site_prefix: fd12:3456:789a:ab00::/56
        domain: example.internal
        locations:
          - name: hq
            number: 0xc
            segments:
              - {name: lan, number: 5}
              - {name: dmz, prefix: "fd12:3456:789a:abff::/64"}
        routers:
          router1: {segments: [lan, dmz]}
        """
    )
    assert plan.location_bits == 4 == default_location_bits(56)
    assert [str(s.prefix) for s in plan.segments] == [
        "fd12:3456:789a:abc5::/64",
        "fd12:3456:789a:abff::/64",
    ]


def test_a_non_nibble_site_prefix_is_a_warning_not_an_error() -> None:
    text = GOOD.replace("fd6b:3c41:9e20::/48", "fd6b:3c41:9e20::/50").replace("0x2a", "0xa")
    text = text.replace('address: "fd6b:3c41:9e20:102::1:5c"', 'interface_id: "::1:5c"')
    plan = plan_of(text)
    assert [str(w) for w in plan.warnings] == [
        "plan.yml:1: site_prefix: warning: /50 is not on a nibble boundary (a multiple of 4): "
        "addresses and reverse DNS zones do not split on hex digits",
    ]
    assert str(plan.segment("branch").prefix) == "fd6b:3c41:9e20:2810::/64"


def test_location_bits_off_a_nibble_are_a_warning() -> None:
    text = GOOD.replace('address: "fd6b:3c41:9e20:102::1:5c"', 'interface_id: "::1:5c"')
    plan = plan_of(text.replace("domain:", "location_bits: 6\ndomain:"))
    assert [str(w) for w in plan.warnings] == [
        "plan.yml:2: location_bits: warning: 6 location bits and 10 segment bits: a segment's "
        "/64 is not location then segment on nibble boundaries",
    ]


BROKEN = {
    "ipv4 site prefix": (
        ("fd6b:3c41:9e20::/48", "10.20.0.0/16"),
        ["plan.yml:1: site_prefix: '10.20.0.0/16' is IPv4; an IPv6 prefix is expected"],
    ),
    "site prefix too long": (
        ("fd6b:3c41:9e20::/48", "fd6b:3c41:9e20:100::/60"),
        [
            "plan.yml:1: site_prefix: a site prefix must be a /48 or at least a /56 to hold "
            "its /64 segments, got /60"
        ],
    ),
    "site prefix with host bits": (
        ("fd6b:3c41:9e20::/48", "fd6b:3c41:9e20::1/48"),
        [
            "plan.yml:1: site_prefix: 'fd6b:3c41:9e20::1/48' has host bits set "
            "(the prefix is fd6b:3c41:9e20::/48)"
        ],
    ),
    "not a prefix": (
        ("fd6b:3c41:9e20::/48", "fd6b:zz::/48"),
        ["plan.yml:1: site_prefix: 'fd6b:zz::/48' is not an IPv6 prefix"],
    ),
    "segment prefix of the wrong length": (
        ("{name: data, number: 2}", '{name: data, prefix: "fd6b:3c41:9e20:200::/56"}'),
        ["plan.yml:8: locations[0].segments[1].prefix: a segment prefix must be a /64, got /56"],
    ),
    "segment prefix outside the site prefix": (
        ("{name: data, number: 2}", '{name: data, prefix: "fd99::/64"}'),
        [
            "plan.yml:8: locations[0].segments[1].prefix: fd99::/64 is outside the site prefix "
            "fd6b:3c41:9e20::/48"
        ],
    ),
    "overlapping segments": (
        ("{name: data, number: 2}", '{name: data, prefix: "fd6b:3c41:9e20:101::/64"}'),
        [
            "plan.yml:8: locations[0].segments[1].prefix: fd6b:3c41:9e20:101::/64 overlaps "
            "segment 'public' (fd6b:3c41:9e20:101::/64)",
            "plan.yml:17: hosts.scratch1.address: fd6b:3c41:9e20:102::1:5c is outside segment "
            "'data' (fd6b:3c41:9e20:101::/64)",
        ],
    ),
    "duplicate addresses": (
        ('address: "fd6b:3c41:9e20:102::1:5c"', 'interface_id: "::d:1"'),
        [
            "plan.yml:17: hosts.scratch1.interface_id: address fd6b:3c41:9e20:102::d:1 is "
            "already given to db1"
        ],
    ),
    "ipv4 address where ipv6 is expected": (
        ('address: "fd6b:3c41:9e20:102::1:5c"', 'address: "192.0.2.10"'),
        ["plan.yml:17: hosts.scratch1.address: '192.0.2.10' is IPv4; an IPv6 address is expected"],
    ),
    "host on an undefined segment": (
        ("web1: {segment: public}", "web1: {segment: dmz}"),
        ["plan.yml:15: hosts.web1.segment: segment 'dmz' is not defined in the plan's locations"],
    ),
    "host not in the inventory": (
        ("web1: {segment: public}", "web9: {segment: public}"),
        ["plan.yml:15: hosts.web9: host 'web9' is not in the inventory"],
    ),
    "address outside its segment": (
        ('address: "fd6b:3c41:9e20:102::1:5c"', 'address: "fd6b:3c41:9e20:101::1:5c"'),
        [
            "plan.yml:17: hosts.scratch1.address: fd6b:3c41:9e20:101::1:5c is outside segment "
            "'data' (fd6b:3c41:9e20:102::/64)"
        ],
    ),
    "interface id in a reserved range": (
        ('interface_id: "::d:1"', 'interface_id: "::1"'),
        [
            "plan.yml:16: hosts.db1.interface_id: interface id ::1 is in a reserved range "
            "(::-::ff gateway and infrastructure, or the RFC 2526 anycast ids)"
        ],
    ),
    "segment without a router": (
        ("router2: {segments: [branch]}", "router2: {segments: [public]}"),
        [
            "plan.yml:7: locations[0].segments[0]: segment 'public' has 2 routers "
            "(router1, router2); the plan gives each segment one gateway",
            "plan.yml:13: locations[1].segments[0]: segment 'branch' has no gateway: no "
            "router of the plan has a leg in it",
        ],
    ),
    "segment number too large": (
        ("{name: branch, number: 0x10}", "{name: branch, number: 256}"),
        [
            "plan.yml:13: locations[1].segments[0].number: segment number 256 does not fit in 8 "
            "bits (0-255)"
        ],
    ),
    "duplicate segment name": (
        ("{name: staff, number: 3, slaac: true}", "{name: data, number: 3}"),
        [
            "plan.yml:9: locations[0].segments[2].name: segment 'data' is already defined in "
            "location 'city-hall'",
            "plan.yml:19: routers.router1.segments[2]: segment 'staff' is not defined in the "
            "plan's locations",
        ],
    ),
    "unknown key": (
        (
            "{name: public, number: 1, vlan: 110, purpose: web}",
            "{name: public, number: 1, vlan: 110, purpose: web, gw: x}",
        ),
        [
            "plan.yml:7: locations[0].segments[0].gw: unknown key (allowed: name, number, vlan, "
            "purpose, slaac, isolated, prefix)"
        ],
    ),
    "vlan out of range": (
        ("vlan: 110", "vlan: 5000"),
        ["plan.yml:7: locations[0].segments[0].vlan: must be a VLAN id from 1 to 4094"],
    ),
    "router that is also a server": (
        ("web1: {segment: public}", "router1: {segment: public}"),
        [
            "plan.yml:15: hosts.router1: host 'router1' is a router of the plan; list it only "
            "under routers"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plan_names_file_line_key_and_problem(case: str) -> None:
    (old, new), expected = BROKEN[case]
    assert old in GOOD
    assert problems_of(GOOD.replace(old, new, 1)) == expected


def test_every_problem_is_reported_at_once() -> None:
    text = (
        GOOD.replace("domain: ventspils.example.internal", "domain: not a domain")
        .replace("{name: data, number: 2}", '{name: data, prefix: "fd99::/64"}')
        .replace("web1: {segment: public}", "web1: {segment: dmz}")
        .replace('address: "fd6b:3c41:9e20:102::1:5c"', 'address: "192.0.2.10"')
    )
    assert problems_of(text) == [
        "plan.yml:2: domain: must be a DNS domain name such as ventspils.example.internal",
        "plan.yml:8: locations[0].segments[1].prefix: fd99::/64 is outside the site prefix "
        "fd6b:3c41:9e20::/48",
        "plan.yml:15: hosts.web1.segment: segment 'dmz' is not defined in the plan's locations",
        "plan.yml:17: hosts.scratch1.address: '192.0.2.10' is IPv4; an IPv6 address is expected",
    ]


def test_missing_keys_are_named() -> None:
    assert problems_of("hosts: {}\n") == [
        "plan.yml:1: (document): required key 'site_prefix' is missing",
        "plan.yml:1: (document): required key 'domain' is missing",
        "plan.yml:1: (document): required key 'locations' is missing",
    ]


# ------------------------------------------------------------------ isolated segments

ISOLATED = """\
site_prefix: fd6b:3c41:9e20::/48
domain: ventspils.example.internal
locations:
  - name: city-hall
    number: 1
    segments:
      - {name: public, number: 1}
      - {name: data, number: 2}
      - {name: recovery, number: 4, vlan: 140, isolated: true}
  - name: library
    number: 0x2a
    segments:
      - {name: branch, number: 0x10}
hosts:
  web1: {segment: public}
  db1: {segment: data, interface_id: "::d:1"}
  web2: {segment: branch}
  scratch1: {segment: recovery, interface_id: "::1:5c"}
routers:
  router1: {segments: [public, data]}
  router2: {segments: [branch]}
"""


def test_an_isolated_segment_has_no_router_no_gateway_and_keeps_its_servers() -> None:
    plan = plan_of(ISOLATED)
    recovery = plan.segment("recovery")
    assert recovery.isolated and recovery.gateway is None and recovery.router is None
    assert str(recovery.prefix) == "fd6b:3c41:9e20:104::/64" and recovery.vlan == 140
    assert str(recovery.reserved[0].first) == "fd6b:3c41:9e20:104::"
    assert [(s.name, s.router) for s in plan.segments if not s.isolated] == [
        ("public", "router1"),
        ("data", "router1"),
        ("branch", "router2"),
    ]
    assert [
        (a.host, a.role, str(a.address)) for a in plan.assignments if a.segment == "recovery"
    ] == [("scratch1", "server", "fd6b:3c41:9e20:104::1:5c")]
    assert plan.routers == ["router1", "router2"]
    assert not plan_of(GOOD).segment("data").isolated  # the default


ISOLATED_BROKEN = {
    "router leg in an isolated segment": (
        ("router1: {segments: [public, data]}", "router1: {segments: [public, data, recovery]}"),
        [
            "plan.yml:20: routers.router1.segments[2]: segment 'recovery' is isolated: router "
            "'router1' may not have a leg in it"
        ],
    ),
    "router's only segment is isolated": (
        ("router2: {segments: [branch]}", "router2: {segments: recovery}"),
        [
            "plan.yml:21: routers.router2.segments: segment 'recovery' is isolated: router "
            "'router2' may not have a leg in it",
            "plan.yml:13: locations[1].segments[0]: segment 'branch' has no gateway: no router "
            "of the plan has a leg in it",
        ],
    ),
    "slaac in an isolated segment": (
        ("vlan: 140, isolated: true}", "vlan: 140, isolated: true, slaac: true}"),
        [
            "plan.yml:9: locations[0].segments[2].slaac: segment 'recovery' is isolated: it "
            "cannot use SLAAC, no router would advertise its prefix"
        ],
    ),
    "isolated not a bool": (
        ("isolated: true}", "isolated: 'true'}"),
        ["plan.yml:9: locations[0].segments[2].isolated: must be true or false"],
    ),
    "not isolated and no router": (
        ("isolated: true}", "isolated: false}"),
        [
            "plan.yml:9: locations[0].segments[2]: segment 'recovery' has no gateway: no router "
            "of the plan has a leg in it"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(ISOLATED_BROKEN))
def test_a_broken_isolated_segment_names_file_line_key_and_problem(case: str) -> None:
    (old, new), expected = ISOLATED_BROKEN[case]
    assert old in ISOLATED
    assert problems_of(ISOLATED.replace(old, new, 1)) == expected


def test_every_problem_of_isolated_segments_is_reported_at_once() -> None:
    text = ISOLATED.replace("isolated: true}", "isolated: true, slaac: true}").replace(
        "router1: {segments: [public, data]}", "router1: {segments: [recovery, public, data]}"
    )
    text = text.replace("{name: data, number: 2}", "{name: data, number: 2, isolated: 1}")
    assert problems_of(text) == [
        "plan.yml:8: locations[0].segments[1].isolated: must be true or false",
        "plan.yml:9: locations[0].segments[2].slaac: segment 'recovery' is isolated: it "
        "cannot use SLAAC, no router would advertise its prefix",
        "plan.yml:20: routers.router1.segments[0]: segment 'recovery' is isolated: router "
        "'router1' may not have a leg in it",
    ]
