"""How checks/test_ipv6.py judges a server of an isolated segment (scratch1 in the example's
recovery segment): no default route, no gateway to reach, and no server of another segment may
answer a ping or a TCP connect. The real check functions are called with the planned state the
site gives and made-up facts and probe results, since no host is contacted here.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from cityguard.config import content_root
from cityguard.config.yaml_lines import load_yaml_file
from cityguard.ipv6.hostvars import host_plan
from cityguard.ipv6.plan import parse_plan
from cityguard.ipv6.rollout import narrowed
from cityguard.verify.expectations import NOT_APPLICABLE_PREFIX, Expect
from cityguard.verify.sections.nftables import Chain, Ruleset

PLAN = parse_plan(
    load_yaml_file(content_root() / "examples" / "site" / "ipv6-plan.yml"),
    ["web1", "db1", "router1", "scratch1"],
)
SCRATCH1 = host_plan(PLAN, "scratch1")
WEB1 = host_plan(PLAN, "web1")
WEB1_ADDRESS = "fd6b:3c41:9e20:101::659a:7fb2"
DB1_ADDRESS = "fd6b:3c41:9e20:102::d:1"
ISOLATED = "segment 'recovery' is isolated"


@pytest.fixture(scope="module")
def checks(pytestconfig: pytest.Config) -> ModuleType:
    """checks/test_ipv6.py under a name of its own, so its tests are not collected here; its
    marker registered as the check plugin registers it (the run uses --strict-markers)."""
    pytestconfig.addinivalue_line("markers", "controls(*ids): the control ids this check proves")
    path = content_root() / "checks" / "test_ipv6.py"
    spec = importlib.util.spec_from_file_location("cityguard_checks_ipv6", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Facts:
    def __init__(self, **sections: Any) -> None:
        self.sections = sections

    def section(self, name: str) -> Any:
        return self.sections[name.replace("-", "_")]


class Request:
    """What the checks ask of pytest's request: the facts fixture."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def getfixturevalue(self, name: str) -> Facts:
        assert name == "facts"
        return self.facts


def probes(ping: dict[str, bool], tcp: dict[str, bool]) -> dict[str, Any]:
    return {"ping": ping, "pmtu": {}, "tcp": tcp, "aaaa": [], "ptr": [], "neigh": []}


def not_applicable(check: Any, *args: Any) -> str:
    with pytest.raises(pytest.skip.Exception) as skipped:
        check(*args)
    message = str(skipped.value.msg)
    assert message.startswith(NOT_APPLICABLE_PREFIX)
    return message.removeprefix(NOT_APPLICABLE_PREFIX)


def test_the_probes_ping_and_connect_to_every_server_an_isolated_host_must_not_reach(
    checks: ModuleType,
) -> None:
    command = checks.probe_command(SCRATCH1)
    for address in (WEB1_ADDRESS, DB1_ADDRESS):
        assert f"echo ping {address} ok || echo ping {address} no" in command
        assert f"</dev/tcp/{address}/22'" in command
        assert f"echo pmtu {address}" not in command  # full-size packets need a peer
    assert "ip -6 neigh" not in command  # no gateway whose neighbour entry to read
    found = checks.parse_probes(f"ping {WEB1_ADDRESS} no\ntcp {WEB1_ADDRESS} ok\n")
    assert found["ping"] == {WEB1_ADDRESS: False} and found["tcp"] == {WEB1_ADDRESS: True}
    # a routed server probes its peers as before, and nothing in the recovery segment
    routed = checks.probe_command(WEB1)
    assert f"echo pmtu {DB1_ADDRESS}" in routed and "fd6b:3c41:9e20:104:" not in routed


def test_an_isolated_host_must_have_no_default_route(checks: ModuleType) -> None:
    check = checks.test_default_route_via_planned_gateway
    expect = Expect()
    check(Request(Facts(ipv6_route=[{"dst": "fe80::/64"}])), expect, SCRATCH1)
    assert expect.observed == [f"default routes ({ISOLATED}): []"]
    via_router = [{"dst": "default", "gateway": "fd6b:3c41:9e20:104::1"}]
    with pytest.raises(AssertionError, match="fd6b:3c41:9e20:104::1"):
        check(Request(Facts(ipv6_route=via_router)), Expect(), SCRATCH1)


def test_an_isolated_host_has_no_gateway_to_reach(checks: ModuleType) -> None:
    why = not_applicable(
        checks.test_gateway_reachable_and_neighbour_usable, Expect(), SCRATCH1, probes({}, {})
    )
    assert why == f"{ISOLATED}: it has no gateway by design"


def test_no_server_of_another_segment_may_answer_an_isolated_host_s_ping(
    checks: ModuleType,
) -> None:
    check = checks.test_hosts_on_other_segments_reachable
    expect = Expect()
    check(expect, SCRATCH1, probes({WEB1_ADDRESS: False, DB1_ADDRESS: False}, {}))
    assert expect.observed == ["ping -6 web1 (isolated): False", "ping -6 db1 (isolated): False"]
    with pytest.raises(AssertionError, match=r"ping -6 db1 \(isolated\): observed True"):
        check(Expect(), SCRATCH1, probes({WEB1_ADDRESS: False, DB1_ADDRESS: True}, {}))
    with pytest.raises(AssertionError, match=r"observed \(absent\)"):  # no verdict is no proof
        check(Expect(), SCRATCH1, probes({WEB1_ADDRESS: False}, {}))
    alone = narrowed(SCRATCH1, ["scratch1"])
    why = not_applicable(check, Expect(), alone, probes({}, {}))
    assert why == f"{ISOLATED} and the plan has no server in another segment"


def test_no_service_of_another_segment_may_accept_an_isolated_host_s_connection(
    checks: ModuleType,
) -> None:
    check = checks.test_service_reachable_over_ipv6_from_this_host
    expect = Expect()
    check(expect, SCRATCH1, probes({}, {WEB1_ADDRESS: False, DB1_ADDRESS: False}))
    assert expect.observed[1] == f"TCP 22 on db1 [{DB1_ADDRESS}] (isolated): False"
    with pytest.raises(AssertionError, match="TCP 22 on web1"):
        check(Expect(), SCRATCH1, probes({}, {WEB1_ADDRESS: True, DB1_ADDRESS: False}))
    why = not_applicable(check, Expect(), narrowed(SCRATCH1, []), probes({}, {}))
    assert why == f"{ISOLATED} and the plan has no server in another segment"


def test_icmpv6_is_judged_and_the_missing_full_size_ping_is_explained(checks: ModuleType) -> None:
    accepting = Ruleset((Chain("inet", "filter", "input", "input", "accept"),))
    expect = Expect()
    checks.test_required_icmpv6_accepted_and_full_size_packets_pass(
        Request(Facts(system_nft=accepting)), expect, SCRATCH1, probes({}, {})
    )
    assert expect.observed == [
        "RFC 4890 ICMPv6 types dropped: []",
        "peers for the 1500-byte DF ping, none sent "
        f"({ISOLATED}: it has no route to another segment): []",
    ]


def test_a_routed_server_is_judged_as_before(checks: ModuleType) -> None:
    expect = Expect()
    checks.test_hosts_on_other_segments_reachable(expect, WEB1, probes({DB1_ADDRESS: True}, {}))
    assert expect.observed == ["ping -6 db1: True"]
    expect = Expect()
    routes = [{"dst": "default", "gateway": "fd6b:3c41:9e20:101::1"}]
    checks.test_default_route_via_planned_gateway(Request(Facts(ipv6_route=routes)), expect, WEB1)
    assert expect.observed == ["default routes (gateway): ['fd6b:3c41:9e20:101::1']"]
