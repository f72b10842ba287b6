"""The nftables model and the firewall's packet evaluation: rulesets as `nft -j list ruleset`
prints them, the verdicts a kernel would give described packets, and the services a host's
groups open."""

from __future__ import annotations

import json
import subprocess

import pytest

from cityguard.verify.sections.firewall import approved_services, evaluate, packet_for
from cityguard.verify.sections.nftables import NFT_COMMAND, Ruleset, parse_nft

# ------------------------------------------------------------------ nftables


def payload(protocol: str, name: str) -> dict[str, object]:
    return {"payload": {"protocol": protocol, "field": name}}


def meta(key: str) -> dict[str, object]:
    return {"meta": {"key": key}}


def ct(key: str) -> dict[str, object]:
    return {"ct": {"key": key}}


def match(left: object, right: object, op: str = "==") -> dict[str, object]:
    return {"match": {"op": op, "left": left, "right": right}}


def chain(
    table: str, name: str, hook: str | None = None, policy: str = "accept", family: str = "inet"
) -> dict[str, object]:
    spec: dict[str, object] = {"family": family, "table": table, "name": name}
    if hook:
        spec.update(type="filter", hook=hook, prio=0, policy=policy)
    return {"chain": spec}


def rule(
    table: str, chain_name: str, *statements: object, family: str = "inet"
) -> dict[str, object]:
    return {
        "rule": {"family": family, "table": table, "chain": chain_name, "expr": list(statements)}
    }


def ruleset_of(*objects: object) -> Ruleset:
    parsed = parse_nft([json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}}, *objects]})])
    assert parsed is not None
    return parsed


ACCEPT, DROP = {"accept": None}, {"drop": None}


@pytest.fixture
def ruleset() -> Ruleset:
    """What `nft -j list ruleset` shows after the firewall role, one service rule kept."""
    table = "cityguard"
    return ruleset_of(
        {"table": {"family": "inet", "name": table, "handle": 6}},
        chain(table, "input", "input", "drop"),
        chain(table, "forward", "forward", "drop"),
        rule(table, "input", match(meta("iifname"), "lo"), ACCEPT),
        rule(
            table,
            "input",
            match(meta("iifname"), "lo", "!="),
            match(payload("ip6", "saddr"), "::1"),
            DROP,
        ),
        rule(table, "input", match(ct("state"), ["established", "related"], "in"), ACCEPT),
        rule(
            table,
            "input",
            match(
                payload("icmpv6", "type"),
                {"set": ["echo-request", "nd-neighbor-solicit", "nd-router-advert"]},
            ),
            ACCEPT,
        ),
        rule(table, "input", match(ct("state"), "invalid", "in"), DROP),
        rule(table, "input", match(payload("tcp", "dport"), 22), ACCEPT),
        rule(
            table,
            "input",
            match(payload("ip6", "saddr"), {"set": [{"prefix": {"addr": "fd00:10::", "len": 64}}]}),
            match(payload("tcp", "dport"), 5432),
            ACCEPT,
        ),
    )


def verdict(ruleset: Ruleset, packet: dict[str, str], hook: str = "input") -> bool:
    return all(v.accepted for v in evaluate(ruleset, packet, hook))


def test_nft_model_lists_chains_and_rules(ruleset: Ruleset) -> None:
    assert ruleset.tables == ("inet cityguard",)
    (input_chain,) = ruleset.base_chains("input")
    assert input_chain.policy == "drop" and input_chain.rules[0].text() == "meta iifname lo accept"
    assert input_chain.rules[5].text() == "tcp dport 22 accept"
    assert ruleset.canonical("inet", "cityguard")[0][:3] == ("input", "input", "drop")


def test_packets_get_the_verdicts_a_kernel_would_give(ruleset: Ruleset) -> None:
    new = {"ct_state": "new"}
    assert verdict(ruleset, packet_for("tcp", 22, "2001:db8::10", **new))
    assert verdict(ruleset, packet_for("tcp", 22, "192.0.2.10", **new))
    assert not verdict(ruleset, packet_for("tcp", 9, "2001:db8::10", **new))
    assert not verdict(ruleset, packet_for("tcp", 22, "::1", **new)), "forged loopback source"
    loopback = packet_for("tcp", 9, "::1", ct_state="new", meta_iifname="lo", meta_iif="lo")
    assert verdict(ruleset, loopback)
    assert verdict(ruleset, packet_for("tcp", 5432, "fd00:10::7", **new))
    assert not verdict(ruleset, packet_for("tcp", 5432, "fd00:11::7", **new))
    assert not verdict(ruleset, packet_for("tcp", 5432, "192.0.2.10", **new))
    assert verdict(ruleset, packet_for("tcp", 40000, "192.0.2.10", ct_state="established"))
    assert not verdict(ruleset, packet_for("tcp", 9, "2001:db8::10", **new), "forward")


def test_neighbour_discovery_is_untracked_not_invalid(ruleset: Ruleset) -> None:
    solicit = packet_for(
        "icmpv6", source="fe80::1", ct_state="untracked", icmpv6_type="nd-neighbor-solicit"
    )
    assert verdict(ruleset, solicit)
    (decision,) = evaluate(ruleset, solicit)
    assert decision.describe().startswith("accepted by inet cityguard input (rule 4: icmpv6 type")
    # a type the rules leave out falls through to the drop policy
    advert = packet_for(
        "icmpv6", source="fe80::1", ct_state="untracked", icmpv6_type="nd-neighbor-advert"
    )
    assert not verdict(ruleset, advert)


def test_unknown_fields_count_against_accepting_and_for_dropping() -> None:
    """A rule testing something the packet leaves open (hop limit) neither proves an accept
    nor is ignored when it drops."""
    advert = packet_for("icmpv6", source="fe80::1", icmpv6_type="nd-router-advert")
    hoplimit = match(payload("ip6", "hoplimit"), 255)
    accepting = ruleset_of(chain("t", "in", "input", "drop"), rule("t", "in", hoplimit, ACCEPT))
    dropping = ruleset_of(chain("t", "in", "input", "accept"), rule("t", "in", hoplimit, DROP))
    assert not verdict(accepting, advert)
    assert not verdict(dropping, advert)


def test_jumps_and_family_specific_chains() -> None:
    parsed = ruleset_of(
        chain("legacy", "INPUT", "input", "drop", family="ip"),
        chain("site", "in", "input", "drop"),
        chain("site", "services"),
        rule("site", "in", {"jump": {"target": "services"}}),
        rule("site", "services", match(payload("th", "dport"), {"range": [8000, 8100]}), ACCEPT),
    )
    ipv6 = packet_for("tcp", 8080, "2001:db8::10", ct_state="new")
    assert verdict(parsed, ipv6), "the ip table's chain never sees IPv6"
    assert not verdict(parsed, packet_for("tcp", 8080, "192.0.2.10", ct_state="new"))
    assert not verdict(parsed, packet_for("tcp", 9000, "2001:db8::10", ct_state="new"))


def test_nft_absent_and_unloadable() -> None:
    assert parse_nft(["absent"]) is None
    with pytest.raises(ValueError, match="Could not process rule"):
        parse_nft(["invalid", "/etc/nftables.conf:3:1-5: Error: Could not process rule"])
    assert ruleset_of().chains == ()


def test_approved_services_resolve_groups_to_addresses() -> None:
    hostvars = {
        "web1": {"ansible_host": "fd00:10::a"},
        "web2": {"ansible_host": "web2.example.lv", "firewall_addresses": ["198.51.100.7"]},
        "web3": {"ansible_host": "web3"},
    }
    services = approved_services(
        {
            "all": [{"name": "node-exporter", "port": 9100, "from": ["fd00:99::/64"]}],
            "db": [{"name": "postgresql", "port": 5432, "from_groups": ["web"]}],
            "web": [{"name": "https", "port": 443}],
        },
        ["db"],
        {"web": ["web1", "web2", "web3"], "db": ["db1"]},
        lambda name: hostvars.get(name, {}),
    )
    assert [(s.name, s.port, s.sources, s.restricted) for s in services] == [
        ("node-exporter", 9100, ("fd00:99::/64",), True),
        ("postgresql", 5432, ("fd00:10::a", "198.51.100.7"), True),
    ]


def test_snippets_report_a_missing_tool_as_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    completed = subprocess.run(
        ["/bin/sh", "-c", NFT_COMMAND], capture_output=True, text=True, env={"PATH": str(tmp_path)}
    )
    assert completed.stdout.splitlines()[:2] == [
        "@@error",
        "nft not found (nftables is not installed)",
    ]
