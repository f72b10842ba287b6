"""The Ansible YAML inventory: groups, limits, host var overlays and writing it back."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from cityguard.config import ConfigError
from cityguard.config.inventory import Inventory, load_inventory

NESTED = """\
all:
  vars:
    ansible_user: ops
  hosts:
    bastion: {ansible_port: 2222}
  children:
    servers:
      vars: {tier: prod}
      children:
        web:
          hosts:
            web1: {role: frontend}
            web2:
        db:
          hosts:
            db1:
    router:
      hosts:
        router1:
    scratch:
      hosts:
        scratch1:
    backup_sources:
      children:
        db:
      hosts:
        web1: {backup: true}
"""


def load(tmp_path: Path, text: str) -> Inventory:
    path = tmp_path / "inventory.yml"
    path.write_text(textwrap.dedent(text))
    return load_inventory(path, "inventory.yml")


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value).splitlines()


def test_groups_include_hosts_reached_through_children(tmp_path: Path) -> None:
    inv = load(tmp_path, NESTED)
    # Ansible order: a group's children are walked before its own hosts.
    assert inv.host_names() == ["web1", "web2", "db1", "router1", "scratch1", "bastion"]
    assert inv.groups["servers"] == ["web1", "web2", "db1"]
    assert inv.groups["backup_sources"] == ["web1", "db1"]
    assert inv.groups["all"] == inv.host_names()
    assert inv.groups_of("web1") == ["servers", "web", "backup_sources"]
    assert inv.groups_of("bastion") == []
    assert inv.group_vars["all"] == {"ansible_user": "ops"}
    assert inv.group_vars["servers"] == {"tier": "prod"}
    assert inv.group_vars["web"] == {}


def test_host_vars_from_several_listings_are_merged(tmp_path: Path) -> None:
    inv = load(tmp_path, NESTED)
    assert inv.hosts["web1"] == {"role": "frontend", "backup": True}
    assert inv.hosts["web2"] == {}
    assert inv.hosts["bastion"] == {"ansible_port": 2222}


def test_top_level_groups_other_than_all_become_children_of_all(tmp_path: Path) -> None:
    inv = load(tmp_path, "web:\n  hosts:\n    web1:\ndb:\n  hosts:\n    db1:\n")
    assert inv.groups == {"all": ["web1", "db1"], "web": ["web1"], "db": ["db1"]}


def test_example_inventory_loads() -> None:
    repo = Path(__file__).resolve().parents[3]
    inv = load_inventory(repo / "examples" / "site" / "inventory.yml")
    assert {name: inv.groups[name] for name in ("web", "db", "router", "scratch")} == {
        "web": ["web1"],
        "db": ["db1"],
        "router": ["router1"],
        "scratch": ["scratch1"],
    }
    assert all(not hostvars for hostvars in inv.hosts.values())  # no addresses in it


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, ["web1", "web2", "db1", "router1", "scratch1", "bastion"]),
        ("", ["web1", "web2", "db1", "router1", "scratch1", "bastion"]),
        ("all", ["web1", "web2", "db1", "router1", "scratch1", "bastion"]),
        ("web", ["web1", "web2"]),
        ("servers", ["web1", "web2", "db1"]),
        ("db1,web", ["web1", "web2", "db1"]),
        ("router1, scratch", ["router1", "scratch1"]),
        ("servers,!web2", ["web1", "db1"]),
        ("all,!servers", ["router1", "scratch1", "bastion"]),
        ("!scratch", ["web1", "web2", "db1", "router1", "bastion"]),
        ("!servers,!bastion", ["router1", "scratch1"]),
    ],
)
def test_select(tmp_path: Path, limit: str | None, expected: list[str]) -> None:
    assert load(tmp_path, NESTED).select(limit) == expected


@pytest.mark.parametrize("limit", ["web,!web", "!all", "dmz", "dmz,!web"])
def test_an_empty_selection_is_refused_never_widened(tmp_path: Path, limit: str) -> None:
    """Handed to Ansible as an empty --limit, an empty selection would mean every host."""
    inv = load(tmp_path, NESTED + "    dmz: {}\n")
    with pytest.raises(ConfigError) as caught:
        inv.select(limit)
    expected = f"inventory.yml: limit: --limit '{limit}' selects no host; nothing to do"
    assert str(caught.value) == expected


def test_select_unknown_names_are_all_reported(tmp_path: Path) -> None:
    inv = load(tmp_path, NESTED)
    with pytest.raises(ConfigError) as caught:
        inv.select("web,wbe,!dbb")
    assert str(caught.value).splitlines() == [
        "limit: no host or group named 'wbe'",
        "limit: no host or group named 'dbb'",
    ]


def test_with_hostvars_overlays_a_copy(tmp_path: Path) -> None:
    inv = load(tmp_path, NESTED)
    merged = inv.with_hostvars(
        {"web1": {"ansible_host": "192.0.2.10", "role": "edge"}, "db1": {"ansible_port": 2200}}
    )
    assert merged.hosts["web1"] == {"role": "edge", "backup": True, "ansible_host": "192.0.2.10"}
    assert merged.hosts["db1"] == {"ansible_port": 2200}
    assert merged.groups == inv.groups
    assert inv.hosts["web1"] == {"role": "frontend", "backup": True}  # original untouched
    with pytest.raises(ConfigError, match="hostvars: no host named 'ghost'"):
        inv.with_hostvars({"ghost": {}})


def test_round_trip_through_to_ansible_and_write(tmp_path: Path) -> None:
    inv = load(tmp_path, NESTED).with_hostvars({"db1": {"ansible_host": "2001:db8::5"}})
    structure = inv.to_ansible()
    assert list(structure) == ["all"]
    out = tmp_path / "out" / "inventory.yml"
    inv.write(out)
    assert yaml.safe_load(out.read_text()) == structure
    again = load_inventory(out)
    assert again == inv
    assert again.host_names() == inv.host_names()
    assert again.to_ansible() == structure


def test_group_under_two_parents_is_written_once_in_full(tmp_path: Path) -> None:
    structure = load(tmp_path, NESTED).to_ansible()
    children = structure["all"]["children"]
    assert children["servers"]["children"]["db"] == {"hosts": {"db1": {}}}
    assert children["backup_sources"]["children"]["db"] == {}


def test_malformed_groups_and_hosts_are_located(tmp_path: Path) -> None:
    text = """\
    all:
      children:
        web:
          hosts:
            web1: 10.0.0.1
            web[1:3]:
        db:
          - db1
        router:
          hosts: [router1]
          host: {}
          vars: 5
    """
    assert problems(tmp_path, text) == [
        "inventory.yml:5: all.children.web.hosts.web1: host vars must be a mapping (or empty)",
        "inventory.yml:6: all.children.web.hosts.web[1:3]: "
        "host ranges are not supported: list each host",
        "inventory.yml:7: all.children.db: a group must be a mapping with hosts, children or vars",
        "inventory.yml:10: all.children.router.hosts: "
        "hosts must be a mapping of host name to host vars",
        "inventory.yml:11: all.children.router.host: unknown key (allowed: children, hosts, vars)",
        "inventory.yml:12: all.children.router.vars: group vars must be a mapping",
    ]


def test_group_cycle_is_reported(tmp_path: Path) -> None:
    text = (
        "all:\n  children:\n    a:\n      children:\n"
        "        b:\n          children:\n            a:\n"
    )
    assert problems(tmp_path, text) == [
        "inventory.yml:7: all.children.a.children.b.children.a: group cycle: a -> b -> a"
    ]


def test_inventory_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- web1\n") == [
        "inventory.yml:1: (document): an inventory must be a mapping of group names (usually 'all')"
    ]


def test_groups_of_unknown_host(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        load(tmp_path, NESTED).groups_of("nobody")
