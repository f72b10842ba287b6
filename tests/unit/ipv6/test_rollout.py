"""The rollout's phases and gates (pure), and the playbook's renderer choice and files, rendered
with Jinja as Ansible renders them: ifupdown and netplan are proven here only (the lab runs
systemd-networkd)."""

from __future__ import annotations

import ast
from typing import Any

import jinja2
import pytest
import yaml

from cityguard.config import content_root
from cityguard.config.yaml_lines import load_yaml_file
from cityguard.ipv6.hostvars import plan_hostvars
from cityguard.ipv6.plan import parse_plan
from cityguard.ipv6.rollout import Phase, gate_hostvars, narrowed, phases

ROLE = content_root() / "playbooks" / "roles" / "ipv6"
PLAN = parse_plan(
    load_yaml_file(content_root() / "examples" / "site" / "ipv6-plan.yml"),
    ["web1", "db1", "router1", "scratch1"],
)
PLANNED = {h: v["cityguard_ipv6"] for h, v in plan_hostvars(PLAN).items()}


def test_routers_then_the_canary_alone_then_batches() -> None:
    assert phases(["a", "b", "c", "d", "e"], ["r"], None, 2) == [
        Phase("routers", ("r",)),
        Phase("canary", ("a",)),
        Phase("batch 1", ("b", "c")),
        Phase("batch 2", ("d", "e")),
    ]
    assert phases(["a", "b", "c"], [], "c", 5) == [
        Phase("canary", ("c",)),
        Phase("batch 1", ("a", "b")),
    ]


@pytest.mark.parametrize(
    ("canary", "size", "message"),
    [("zz", 2, "canary 'zz' is not a server of the plan"), (None, 0, "batch size")],
)
def test_a_bad_canary_or_batch_size_is_refused(canary: str | None, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        phases(["a"], [], canary, size)


def test_the_gate_judges_peers_rolled_out_so_far() -> None:
    gate = gate_hostvars(PLANNED, ["router1", "web1"])
    assert sorted(gate) == ["router1", "web1"]
    assert gate["web1"]["cityguard_ipv6"]["peers"] == []  # db1 not yet done
    assert [p["host"] for p in gate["router1"]["cityguard_ipv6"]["peers"]] == ["web1"]
    full = narrowed(PLANNED["web1"], list(PLANNED))
    assert [p["host"] for p in full["peers"]] == ["db1"]  # scratch1 is isolated


def test_the_gate_judges_an_isolated_host_against_servers_that_have_their_address() -> None:
    gate = gate_hostvars(PLANNED, ["router1", "db1", "scratch1"])
    scratch1 = gate["scratch1"]["cityguard_ipv6"]
    assert scratch1["peers"] == []
    # web1 has no IPv6 address yet: not answering proves nothing about isolation
    assert [s["host"] for s in scratch1["unreachable"]] == ["db1"]
    full = narrowed(PLANNED["scratch1"], list(PLANNED))
    assert [s["host"] for s in full["unreachable"]] == ["web1", "db1"]
    assert narrowed({"unplanned": "why"}, ["db1"]) == {"unplanned": "why"}


def defaults() -> dict[str, Any]:
    data = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert isinstance(data, dict)
    return data


def render(expression: str, context: dict[str, Any]) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["basename"] = lambda p: p.rsplit("/", 1)[-1]
    return env.from_string(expression).render(**context).strip()


@pytest.mark.parametrize(
    ("probe", "renderer"),
    [
        ({"netplan": "yes", "networkd": "active", "network_file": "/run/x.network"}, "netplan"),
        (
            {"netplan": "no", "networkd": "active", "network_file": "/etc/10-host0.network"},
            "networkd",
        ),
        (
            {"netplan": "no", "networkd": "inactive", "network_file": "", "ifupdown": "yes"},
            "ifupdown",
        ),
        (
            {"netplan": "no", "networkd": "active", "network_file": "", "ifupdown": "yes"},
            "ifupdown",
        ),
        ({"netplan": "no", "networkd": "inactive", "network_file": "", "ifupdown": "no"}, "none"),
    ],
)
def test_the_renderer_is_what_the_host_uses(probe: dict[str, str], renderer: str) -> None:
    assert render(defaults()["ipv6_renderer"], {"ipv6_probe": probe}) == renderer


def template(name: str, **context: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,  # as Ansible's template lookup
    )
    return env.get_template(name).render(**context)


def links_of(plan: dict[str, Any], interfaces: dict[str, str], gateway: str | None) -> Any:
    """The role's ipv6_links as Ansible renders it (a Python literal of the list)."""
    text = render(
        defaults()["ipv6_links"],
        {
            "ipv6_plan": plan,
            "ipv6_segment_interfaces": interfaces,
            "ipv6_interface": "eth0",
            "ipv6_gateway": gateway,
        },
    )
    return ast.literal_eval(text)


@pytest.mark.parametrize("renderer", ["networkd", "netplan", "ifupdown"])
def test_each_renderer_writes_the_planned_addresses_and_gateway(renderer: str) -> None:
    plan = PLANNED["web1"]
    links = links_of(plan, {}, plan["gateway"])
    text = template(
        f"{renderer}.j2",
        inventory_hostname="web1",
        ipv6_plan=plan,
        ipv6_links=links,
        ipv6_link=links[0],
    )
    assert "fd6b:3c41:9e20:101::659a:7fb2/64" in text
    assert "fd6b:3c41:9e20:101::1" in text
    if renderer == "netplan":
        data = yaml.safe_load(text)["network"]["ethernets"]["eth0"]
        assert data["routes"] == [{"to": "::/0", "via": "fd6b:3c41:9e20:101::1"}]
        assert data["accept-ra"] is False and data["ipv6-privacy"] is False
    if renderer == "networkd":
        assert "IPv6AcceptRA=no" in text and "IPv6PrivacyExtensions=no" in text
        assert "DuplicateAddressDetection=ipv6" in text
    if renderer == "ifupdown":
        assert "iface eth0 inet6 static" in text and "privext 0" in text


@pytest.mark.parametrize("renderer", ["networkd", "netplan", "ifupdown"])
def test_a_server_of_an_isolated_segment_gets_its_address_and_no_default_route(
    renderer: str,
) -> None:
    plan = PLANNED["scratch1"]
    assert plan["gateway"] is None and plan["isolated"] is True
    links = links_of(plan, {}, plan["gateway"])
    text = template(
        f"{renderer}.j2",
        inventory_hostname="scratch1",
        ipv6_plan=plan,
        ipv6_links=links,
        ipv6_link=links[0],
    )
    assert "fd6b:3c41:9e20:104::da1a:a9af/64" in text
    assert "fd6b:3c41:9e20:104::1" not in text
    for route in ("[Route]", "routes:", "gateway "):
        assert route not in text


def test_a_router_gets_each_leg_on_the_interface_of_its_segment_and_no_default_route() -> None:
    plan = PLANNED["router1"]
    interfaces = {leg["segment"]: f"host{n}" for n, leg in enumerate(plan["legs"])}
    links = links_of(plan, interfaces, None)
    assert [link["interface"] for link in links] == list(interfaces.values())
    for link, leg in zip(links, plan["legs"], strict=True):
        text = template("networkd.j2", inventory_hostname="router1", ipv6_plan=plan, ipv6_link=link)
        assert text.count("[Address]") == 1 and f"Address={leg['address']}/64" in text
        assert "[Route]" not in text
    netplan = yaml.safe_load(
        template("netplan.j2", inventory_hostname="router1", ipv6_plan=plan, ipv6_links=links)
    )
    assert sorted(netplan["network"]["ethernets"]) == sorted(interfaces.values())


def test_legs_without_a_named_interface_share_the_managed_one() -> None:
    plan = PLANNED["router1"]
    links = links_of(plan, {}, None)
    assert [(link["interface"], len(link["legs"])) for link in links] == [
        ("eth0", len(plan["legs"]))
    ]
    text = template("networkd.j2", inventory_hostname="router1", ipv6_plan=plan, ipv6_link=links[0])
    assert text.count("[Address]") == len(plan["legs"])
