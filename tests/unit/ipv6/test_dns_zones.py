"""The zone fragments a rollout hands to the DNS server's role (ipv6_dns): one file per zone,
forward and reverse, named for the zone, holding the plan's AAAA and PTR records."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cityguard.config import content_root
from cityguard.config.yaml_lines import load_yaml_file
from cityguard.ipv6.plan import parse_plan
from cityguard.ipv6.rollout_action import write_zone_fragments

PLAN = parse_plan(
    load_yaml_file(content_root() / "examples" / "site" / "ipv6-plan.yml"),
    ["web1", "db1", "router1", "scratch1"],
)


def test_one_file_per_zone_with_the_plans_records(tmp_path: Path) -> None:
    zones = write_zone_fragments(PLAN, tmp_path / "zones")
    assert [z["zone"] for z in zones] == [
        "ventspils.example.internal",
        "0.2.e.9.1.4.c.3.b.6.d.f.ip6.arpa",
    ]
    forward, reverse = (Path(z["file"]).read_text() for z in zones)
    assert Path(zones[0]["file"]) == tmp_path / "zones" / "ventspils.example.internal.zone"
    db1 = next(a for a in PLAN.assignments if a.host == "db1")
    assert str(db1.address) == "fd6b:3c41:9e20:102::d:1"
    assert f"db1{' ' * 21} IN AAAA fd6b:3c41:9e20:102::d:1" in forward.splitlines()
    pointer = ipaddress.IPv6Address(db1.address).reverse_pointer
    relative = pointer.removesuffix(".0.2.e.9.1.4.c.3.b.6.d.f.ip6.arpa")
    assert f"{relative} IN PTR db1.ventspils.example.internal." in reverse.splitlines()
    # every planned address has both records, routers' legs included
    assert forward.count(" IN AAAA ") == reverse.count(" IN PTR ") == len(PLAN.assignments)


def test_the_zones_do_not_depend_on_where_the_site_is_checked_out(tmp_path: Path) -> None:
    """The DNS server loads these files: a copy of the site elsewhere must not rewrite them."""
    copy = tmp_path / "elsewhere" / "ipv6-plan.yml"
    copy.parent.mkdir()
    copy.write_text((content_root() / "examples" / "site" / "ipv6-plan.yml").read_text())
    moved = parse_plan(load_yaml_file(copy), ["web1", "db1", "router1", "scratch1"])
    assert moved.file != PLAN.file
    here = write_zone_fragments(PLAN, tmp_path / "here")
    there = write_zone_fragments(moved, tmp_path / "there")
    for ours, theirs in zip(here, there, strict=True):
        assert Path(ours["file"]).read_text() == Path(theirs["file"]).read_text()
