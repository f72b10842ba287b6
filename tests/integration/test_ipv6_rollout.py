"""`cityguard ipv6 rollout` on real lab hosts (issue 12): routers, a canary and a batch, the 12
IPv6 checks green on every host (AAAA and PTR answered by the lab's real DNS server, unbound on
router1); a wrong gateway fails the gate, the batch rolls back by itself and the host answers
over IPv4/SSH with its old configuration; a second rollout changes nothing; and this machine's
own IPv6 addresses and routes stay as they were throughout."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import changed_per_host, run_cli

from cityguard.core.exitcodes import ExitCode
from cityguard.core.process import run
from cityguard.evidence import SqliteStore
from cityguard.ipv6.rollout_action import RolloutOutcome, ipv6_rollout
from cityguard.workspace import open_workspace
from conftest import LabSession

pytestmark = pytest.mark.integration

IPV6_CONTROLS = [f"CG-IPV6-{n:03d}" for n in range(1, 13)]
FIREWALL_CONTROLS = ["CG-FW-001", "CG-FW-002", "CG-FW-003", "CG-FW-004"]
SERVERS = ("db1", "scratch1", "web1")
# a router is the segments' gateway itself: its default-route and gateway checks do not apply
ROUTER_NOT_APPLICABLE = {"CG-IPV6-004", "CG-IPV6-005"}
# scratch1 sits in the isolated recovery segment: no gateway and no DNS server within reach
# (its checks of other segments assert that they are unreachable instead)
ISOLATED_NOT_APPLICABLE = {"CG-IPV6-005", "CG-IPV6-007", "CG-IPV6-008"}
WRONG_GATEWAY = "fd6b:3c41:9e20:101::99"  # in web1's segment, but nobody has it
WEB_GATEWAY = "fd6b:3c41:9e20:101::1"  # router1's leg in the public segment
DB1 = "fd6b:3c41:9e20:102::d:1"  # in the data segment
# the lab's bridge (cg<id>br), plain hosts' veths (cg<id>h<n>v), nspawn's host-side veths (vb-...)
LAB_LINKS = ("cg", "vb-")
NETWORK_FILE = "/etc/systemd/network/*.network.d/60-cityguard-ipv6.conf"


def own_ipv6_state() -> dict[str, Any]:
    """This machine's IPv6 addresses and routes, without the lab's own bridges and veths."""

    def outside_lab(text: str, key: str) -> list[Any]:
        return sorted(
            (
                json.dumps(item, sort_keys=True)
                for item in json.loads(text or "[]")
                if not str(item.get(key, "")).startswith(LAB_LINKS)
            ),
        )

    addrs = run(["ip", "-j", "-6", "addr", "show"], what="listing addresses", timeout=10).stdout
    routes = run(
        ["ip", "-j", "-6", "route", "show", "table", "all"], what="listing routes", timeout=10
    ).stdout
    # address lifetimes count down: compare the addresses themselves
    addresses = [
        {"ifname": link["ifname"], "addrs": sorted(a["local"] for a in link.get("addr_info", []))}
        for link in json.loads(addrs or "[]")
    ]
    return {
        "addresses": outside_lab(json.dumps(addresses), "ifname"),
        "routes": [r for r in outside_lab(routes, "dev") if '"expires"' not in r],
    }


def rollout(site: Path, **kwargs: Any) -> RolloutOutcome:
    return ipv6_rollout(open_workspace(site), **kwargs)


def ipv6_check(site: Path) -> dict[tuple[str, str], dict[str, Any]]:
    _code, out, err = run_cli(
        "check", "--site", str(site), "--format", "json", "--controls", ",".join(IPV6_CONTROLS)
    )
    assert out, err
    return {(c["host"], c["control"]): c for c in json.loads(out)["controls"]}


@pytest.fixture(scope="module")
def own_before() -> dict[str, Any]:
    return own_ipv6_state()


@pytest.fixture(scope="module")
def rolled_out(lab_session: LabSession, own_before: dict[str, Any]) -> Iterator[RolloutOutcome]:
    """harden's firewall (the gate's CG-IPV6-011/012 judge its table), then the rollout."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
        code, out, err = run_cli(
            "harden",
            "--site",
            str(lab_session.site_file),
            "-q",
            "--controls",
            ",".join(FIREWALL_CONTROLS),
        )
        assert code == 0, out + err
        # before: management on IPv4 only, routed between segments by router1; no global IPv6
        assert lab_session.ssh("web1", "ip -6 -o addr show scope global") == ""
        assert "ttl=63" in lab_session.ssh("web1", "ping -4 -c1 -W2 db1")
        yield rollout(lab_session.site_file, batch_size=2)


def test_canary_and_batch_roll_out_and_every_ipv6_check_passes_on_every_host(
    lab: LabSession, rolled_out: RolloutOutcome
) -> None:
    assert rolled_out.exit_code == ExitCode.OK, rolled_out.failure
    names = [s.name for s in rolled_out.steps]
    assert names == [
        "apply routers",
        "gate routers",
        "confirm routers",
        "apply canary",
        "gate canary",
        "confirm canary",
        "apply batch 1",
        "gate batch 1",
        "confirm batch 1",
    ]
    assert all(s.outcome.value == "pass" for s in rolled_out.steps)
    assert all(n > 0 for n in rolled_out.changed.values()), rolled_out.changed
    results = ipv6_check(lab.site_file)
    for host in ("router1", *SERVERS):
        for control in IPV6_CONTROLS:
            result = results[(host, control)]
            wanted = (
                "not-applicable"
                if (host == "router1" and control in ROUTER_NOT_APPLICABLE)
                or (host == "scratch1" and control in ISOLATED_NOT_APPLICABLE)
                else "pass"
            )
            assert result["outcome"] == wanted, (host, control, result)
    # the names resolve through the lab's DNS server, not /etc/hosts
    assert "nameserver fd6b:3c41:9e20:" in lab.ssh("web1", "cat /etc/resolv.conf")
    assert "ventspils.example.internal" not in lab.ssh("web1", "cat /etc/hosts")
    answer = lab.ssh("web1", "getent hosts db1.ventspils.example.internal")
    assert answer.split() == ["fd6b:3c41:9e20:102::d:1", "db1.ventspils.example.internal"]


def test_a_server_reaches_a_server_of_another_segment_over_ipv6_through_the_router(
    lab: LabSession, rolled_out: RolloutOutcome
) -> None:
    assert rolled_out.exit_code == ExitCode.OK, rolled_out.failure
    route = lab.ssh("web1", f"ip -6 route get {DB1}")
    assert f"via {WEB_GATEWAY} dev host0" in route, route
    assert "ttl=63" in lab.ssh("web1", f"ping -6 -c1 -W2 {DB1}")  # one router on the way
    # a hop limit of 1 ends at the router, which says so from its leg in web1's segment
    one_hop = run(
        [
            "ssh",
            "-F",
            str(lab.lab.ssh_config),
            "web1",
            f"ping -6 -c1 -W2 -t1 {DB1}",
        ],
        what="pinging with hop limit 1",
        timeout=30,
        check=False,
    )
    assert f"From {WEB_GATEWAY}" in one_hop.stdout and "Time exceeded" in one_hop.stdout


def test_a_second_rollout_changes_nothing(lab: LabSession, rolled_out: RolloutOutcome) -> None:
    again = rollout(lab.site_file, batch_size=2)
    assert again.exit_code == ExitCode.OK, again.failure
    assert set(again.changed) == {"router1", *SERVERS}
    assert sum(again.changed.values()) == 0, again.changed


def wrong_gateway_site(tmp_path: Path, lab: LabSession) -> Path:
    """The example site (same name, same lab) with web1's gateway set wrong in its inventory."""
    target = tmp_path / "site"
    shutil.copytree(lab.site_file.parent, target)
    inventory = yaml.safe_load((target / "inventory.yml").read_text())
    inventory["all"]["children"]["web"]["hosts"]["web1"] = {"ipv6_gateway": WRONG_GATEWAY}
    (target / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return target / "site.yml"


def test_a_wrong_gateway_fails_the_gate_and_the_batch_rolls_back(
    lab: LabSession, rolled_out: RolloutOutcome, tmp_path: Path
) -> None:
    before = {h: lab.ssh(h, f"cat {NETWORK_FILE}; ip -6 route show default") for h in SERVERS}
    assert "fd6b:3c41:9e20:101::1" in before["web1"]
    site = wrong_gateway_site(tmp_path, lab)
    broken = rollout(site, batch_size=2)
    assert broken.exit_code == ExitCode.FAILED
    # the phase web1 is rolled out in (the canary: the plan's first server) fails its gate; the
    # failure names the check and the host
    phase = next(
        s.name.removeprefix("apply ")
        for s in broken.steps
        if s.name.startswith("apply ") and "web1" in (s.detail or "").split(":")[0]
    )
    assert broken.failure is not None
    assert broken.failure.startswith(f"{phase}: gate failed: CG-IPV6-004"), broken.failure
    assert "on web1" in broken.failure
    steps = {s.name: s for s in broken.steps}
    assert steps[f"gate {phase}"].outcome.value == "fail"
    assert steps[f"rollback {phase}"].outcome.value == "pass", steps[f"rollback {phase}"].detail
    assert f"confirm {phase}" not in steps
    assert list(steps)[-1] == f"rollback {phase}"  # the rollout stopped there
    assert broken.changed["web1"] > 0
    # back, over IPv4/SSH: a fresh login at the host's lab IPv4 address (its pinned host key)
    ipv4 = next(h.ipv4 for h in lab.lab.hosts if h.name == "web1")
    login = run(
        [
            "ssh",
            "-F",
            str(lab.lab.ssh_config),
            "-o",
            "ControlPath=none",
            "-o",
            f"HostName={ipv4}",
            "web1",
            "echo over-ipv4",
        ],
        what="logging in to web1 over IPv4",
        timeout=30,
    )
    assert login.stdout.strip() == "over-ipv4"
    # with the old files and the old default route
    after = {h: lab.ssh(h, f"cat {NETWORK_FILE}; ip -6 route show default") for h in SERVERS}
    assert after == before
    assert WRONG_GATEWAY not in after["web1"]
    # the evidence holds the failed gate and the rollback
    with SqliteStore(lab.state_dir / "evidence.sqlite") as store:
        recorded = {s.name: s.outcome.value for s in store.steps(broken.run_id)}
    assert recorded[f"gate {phase}"] == "fail" and recorded[f"rollback {phase}"] == "pass"
    # and the plan is whole again: every IPv6 check passes as before
    results = ipv6_check(lab.site_file)
    assert results[("web1", "CG-IPV6-004")]["outcome"] == "pass"


def test_harden_and_the_rollout_agree_in_either_order(
    lab: LabSession, rolled_out: RolloutOutcome
) -> None:
    """rollout then harden, then harden then rollout: neither undoes the other (the second of
    each changes nothing) and every check of both areas passes or is not applicable (lab)."""
    assert rolled_out.exit_code == ExitCode.OK, rolled_out.failure
    site = str(lab.site_file)
    code, out, err = run_cli("harden", "--site", site, "-q")  # the whole baseline, after it
    assert code == 0, out + err
    again = rollout(lab.site_file, batch_size=2)
    assert again.exit_code == ExitCode.OK, again.failure
    assert sum(again.changed.values()) == 0, again.changed  # harden undid none of it
    code, out, err = run_cli("harden", "--site", site, "-q")
    assert code == 0, out + err
    assert set(changed_per_host(lab.state_dir).values()) == {0}  # nor the rollout harden's
    code, out, err = run_cli("check", "--site", site, "--format", "json")
    assert code == 0, out + err
    results = json.loads(out)["controls"]
    assert {c["control"] for c in results} >= set(IPV6_CONTROLS)
    for result in results:
        assert result["outcome"] in ("pass", "not-applicable"), result
        if result["outcome"] == "not-applicable":
            assert result["reason"], result


def test_this_machines_own_ipv6_addresses_and_routes_are_unchanged(
    lab: LabSession, rolled_out: RolloutOutcome, own_before: dict[str, Any]
) -> None:
    assert own_ipv6_state() == own_before
