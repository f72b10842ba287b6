"""The plan's exports: NetBox CSVs, zone fragments and JSON, from the example site's plan."""

from __future__ import annotations

import csv
import io
import ipaddress
import json

from cityguard.config import content_root
from cityguard.config.yaml_lines import load_yaml_file
from cityguard.ipv6.export import exports, plan_data, reverse_zone
from cityguard.ipv6.plan import AddressPlan, parse_plan

EXAMPLE = content_root() / "examples" / "site" / "ipv6-plan.yml"


def example() -> AddressPlan:
    return parse_plan(
        load_yaml_file(EXAMPLE, "ipv6-plan.yml"), ["web1", "db1", "router1", "scratch1"]
    )


def test_example_plan_is_ula_not_fd00_64_with_two_segments_and_a_router() -> None:
    plan = example()
    assert plan.site_prefix.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert not plan.site_prefix.overlaps(ipaddress.IPv6Network("fd00::/64"))
    assert len(plan.segments) >= 2 and plan.routers == ["router1"]
    assert {s.router for s in plan.segments if not s.isolated} == {"router1"}
    recovery = plan.segment("recovery")  # the restore drills' segment: no router by design
    assert recovery.isolated and recovery.router is None and recovery.gateway is None
    assert [a.host for a in plan.assignments if a.segment == "recovery"] == ["scratch1"]


def test_netbox_csvs_have_the_import_headers_and_one_row_per_object() -> None:
    files = exports(example())
    prefixes = list(csv.DictReader(io.StringIO(files["netbox-prefixes.csv"])))
    assert prefixes[0] == {
        "prefix": "fd6b:3c41:9e20::/48",
        "status": "container",
        "description": "site prefix (ventspils.example.internal)",
    }
    assert [p["prefix"] for p in prefixes[1:]] == [
        "fd6b:3c41:9e20:101::/64",
        "fd6b:3c41:9e20:102::/64",
        "fd6b:3c41:9e20:103::/64",
        "fd6b:3c41:9e20:104::/64",
    ]
    assert prefixes[-1]["description"].endswith(" (isolated)")
    addresses = list(csv.DictReader(io.StringIO(files["netbox-ip-addresses.csv"])))
    db1 = [a for a in addresses if a["dns_name"] == "db1.ventspils.example.internal"]
    assert db1 == [
        {
            "address": "fd6b:3c41:9e20:102::d:1/64",
            "status": "active",
            "dns_name": "db1.ventspils.example.internal",
            "description": "db1 in data",
        }
    ]
    # an isolated segment's server is listed; the segment has no gateway to list
    scratch1 = [a for a in addresses if a["dns_name"].startswith("scratch1.")]
    assert [(a["address"], a["description"]) for a in scratch1] == [
        ("fd6b:3c41:9e20:104::da1a:a9af/64", "scratch1 in recovery")
    ]
    assert not [a for a in addresses if a["description"] == "gateway of recovery"]


def test_zone_fragments_forward_and_reverse_agree() -> None:
    plan = example()
    files = exports(plan)
    assert reverse_zone(plan) == "0.2.e.9.1.4.c.3.b.6.d.f.ip6.arpa"
    forward = files["ventspils.example.internal.zone"].splitlines()
    reverse = files["0.2.e.9.1.4.c.3.b.6.d.f.ip6.arpa.zone"].splitlines()
    assert "$ORIGIN ventspils.example.internal." in forward
    assert "db1                      IN AAAA fd6b:3c41:9e20:102::d:1" in forward
    assert "scratch1                 IN AAAA fd6b:3c41:9e20:104::da1a:a9af" in forward
    assert (
        "1.0.0.0.d.0.0.0.0.0.0.0.0.0.0.0.2.0.1.0 IN PTR db1.ventspils.example.internal." in reverse
    )
    # every PTR name, completed with the zone, is the reverse pointer of an AAAA address
    aaaa = {line.split()[-1] for line in forward if " IN AAAA " in line}
    ptr = {line.split()[0] + "." + reverse_zone(plan) for line in reverse if " IN PTR " in line}
    assert ptr == {ipaddress.IPv6Address(a).reverse_pointer for a in aaaa}


def test_json_lists_every_segment_with_gateway_reserved_and_slaac() -> None:
    data = json.loads(exports(example())["plan.json"])
    assert data == plan_data(example())
    staff = data["segments"][2]
    assert staff["segment"] == "staff" and staff["slaac"] is True
    assert staff["gateway"] == "fd6b:3c41:9e20:103::1"
    assert len(staff["reserved"]) == 2
    assert staff["isolated"] is False


def test_json_marks_an_isolated_segment_with_no_gateway_or_router() -> None:
    recovery = json.loads(exports(example())["plan.json"])["segments"][3]
    assert recovery["segment"] == "recovery" and recovery["isolated"] is True
    assert recovery["gateway"] is None and recovery["router"] is None
    assert [(a["host"], a["role"]) for a in recovery["addresses"]] == [("scratch1", "server")]
