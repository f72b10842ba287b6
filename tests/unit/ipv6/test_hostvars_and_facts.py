"""The planned state each host's checks get, and the IPv6 fact parsers on real command output."""

from __future__ import annotations

import json

from cityguard.config import content_root
from cityguard.config.yaml_lines import load_yaml_file, parse_yaml
from cityguard.ipv6.hostvars import host_plan, plan_hostvars
from cityguard.ipv6.plan import parse_plan
from cityguard.verify.sections.ipv6 import (
    ICMPV6_REQUIRED,
    listens_on_ipv6,
    parse_addresses,
    parse_listeners,
    resolved_ipv6,
)

PLAN = parse_plan(
    load_yaml_file(content_root() / "examples" / "site" / "ipv6-plan.yml"),
    ["web1", "db1", "router1", "scratch1"],
)

# `ip -j -6 addr show` of a host whose new address is still in DAD, plus a failed one
IP_ADDR = json.dumps(
    [
        {
            "ifname": "lo",
            "addr_info": [{"family": "inet6", "local": "::1", "prefixlen": 128, "scope": "host"}],
        },
        {
            "ifname": "host0",
            "addr_info": [
                {
                    "family": "inet6",
                    "local": "fd6b:3c41:9e20:101::659a:7fb2",
                    "prefixlen": 64,
                    "scope": "global",
                    "tentative": True,
                },
                {
                    "family": "inet6",
                    "local": "fd6b:3c41:9e20:101::5",
                    "prefixlen": 64,
                    "scope": "global",
                    "dadfailed": True,
                    "tentative": True,
                },
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
            ],
        },
    ]
)


def test_a_server_gets_its_address_gateway_and_peers_in_other_segments() -> None:
    web1 = host_plan(PLAN, "web1")
    assert web1["role"] == "server" and web1["accept_ra"] == 0 and web1["forwarding"] == 0
    assert web1["gateway"] == "fd6b:3c41:9e20:101::1"
    assert web1["legs"][0]["address"] == "fd6b:3c41:9e20:101::659a:7fb2"
    # scratch1 sits in the isolated recovery segment: no peer of anyone
    assert [p["host"] for p in web1["peers"]] == ["db1"]
    assert web1["isolated"] is False and web1["unreachable"] == []
    assert web1["fqdn"] == "web1.ventspils.example.internal"


def test_a_router_gets_a_leg_per_segment_forwarding_and_the_slaac_prefixes() -> None:
    router = host_plan(PLAN, "router1")
    assert router["role"] == "router" and router["gateway"] is None and router["forwarding"] == 1
    assert [leg["address"] for leg in router["legs"]] == [
        "fd6b:3c41:9e20:101::1",
        "fd6b:3c41:9e20:102::1",
        "fd6b:3c41:9e20:103::1",
    ]
    assert router["slaac_segments"] == [{"segment": "staff", "prefix": "fd6b:3c41:9e20:103::/64"}]
    assert sorted(plan_hostvars(PLAN)) == ["db1", "router1", "scratch1", "web1"]


# two routers that share no segment, and an isolated segment with two servers
ROUTED_AND_ISOLATED = parse_plan(
    parse_yaml(
        """\
site_prefix: fd6b:3c41:9e20::/48
domain: ventspils.example.internal
locations:
  - name: city-hall
    number: 1
    segments:
      - {name: public, number: 1}
      - {name: data, number: 2}
      - {name: recovery, number: 4, isolated: true}
  - name: library
    number: 2
    segments:
      - {name: branch, number: 1}
hosts:
  web1: {segment: public}
  db1: {segment: data, interface_id: "::d:1"}
  web2: {segment: branch, interface_id: "::b:2"}
  scratch1: {segment: recovery, interface_id: "::1:5c"}
  scratch2: {segment: recovery, interface_id: "::2:5c"}
routers:
  router1: {segments: [public, data]}
  router2: {segments: [branch]}
""",
        "plan.yml",
    ),
    ["web1", "web2", "db1", "router1", "router2", "scratch1", "scratch2"],
)


def hosts(servers: list[dict[str, str]]) -> list[str]:
    return [s["host"] for s in servers]


def test_a_server_of_an_isolated_segment_has_no_gateway_no_peers_and_must_reach_no_one() -> None:
    scratch1 = host_plan(ROUTED_AND_ISOLATED, "scratch1")
    assert scratch1["gateway"] is None and scratch1["legs"][0]["gateway"] is None
    assert scratch1["isolated"] is True and scratch1["legs"][0]["isolated"] is True
    assert scratch1["peers"] == []
    # every server of every other segment; scratch2 shares its link, so it is neither
    assert scratch1["unreachable"] == [
        {"host": "web1", "address": "fd6b:3c41:9e20:101::659a:7fb2", "segment": "public"},
        {"host": "db1", "address": "fd6b:3c41:9e20:102::d:1", "segment": "data"},
        {"host": "web2", "address": "fd6b:3c41:9e20:201::b:2", "segment": "branch"},
    ]
    assert scratch1["accept_ra"] == 0 and scratch1["forwarding"] == 0
    assert scratch1["fqdn"] == "scratch1.ventspils.example.internal"


def test_a_routed_server_has_no_peer_in_an_isolated_segment() -> None:
    web1 = host_plan(ROUTED_AND_ISOLATED, "web1")
    assert web1["isolated"] is False and web1["unreachable"] == []
    assert web1["gateway"] == "fd6b:3c41:9e20:101::1"
    assert hosts(web1["peers"]) == ["db1", "web2"]


def test_a_router_peers_only_with_the_servers_of_its_own_legs() -> None:
    router1 = host_plan(ROUTED_AND_ISOLATED, "router1")
    assert hosts(router1["peers"]) == ["web1", "db1"]  # not web2 (router2's), not recovery
    assert router1["isolated"] is False and router1["unreachable"] == []
    assert hosts(host_plan(ROUTED_AND_ISOLATED, "router2")["peers"]) == ["web2"]
    assert hosts(host_plan(PLAN, "router1")["peers"]) == ["web1", "db1"]


def test_addresses_keep_the_flags_testinfra_hides() -> None:
    parsed = {a.address: a for a in parse_addresses(IP_ADDR.splitlines())}
    assert parsed["fd6b:3c41:9e20:101::659a:7fb2"].flags == {"tentative"}
    assert parsed["fd6b:3c41:9e20:101::5"].flags == {"tentative", "dadfailed"}
    assert parsed["fd6b:3c41:9e20:101::5"].text == (
        "fd6b:3c41:9e20:101::5/64 on host0 [dadfailed,tentative]"
    )
    assert parsed["fe80::1"].scope == "link"


def test_listeners_and_v4_mapped_lookups() -> None:
    ss = [
        "LISTEN 0      128          0.0.0.0:22        0.0.0.0:*",
        "LISTEN 0      128             [::]:22           [::]:*",
        "LISTEN 0      244        127.0.0.1:5432      0.0.0.0:*",
        "LISTEN 0      511                *:80              *:*",
    ]
    listeners = parse_listeners(ss)
    assert listeners == [("0.0.0.0", 22), ("::", 22), ("127.0.0.1", 5432), ("*", 80)]
    assert listens_on_ipv6(listeners, 22) and listens_on_ipv6(listeners, 80)
    assert not listens_on_ipv6(listeners, 5432)
    getent = [
        "::ffff:198.18.4.10 STREAM web1",
        "fd6b:3c41:9e20:101::659a:7fb2 STREAM web1.ventspils.example.internal",
    ]
    assert resolved_ipv6(getent) == {"fd6b:3c41:9e20:101::659a:7fb2"}


def test_the_rfc4890_list_has_the_errors_echo_and_neighbour_discovery() -> None:
    numbers = {number for _, number, _ in ICMPV6_REQUIRED}
    assert {1, 2, 3, 4, 128, 129, 133, 134, 135, 136} <= numbers
    assert 137 not in numbers  # redirect: a policy decision, not required
