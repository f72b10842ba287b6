"""The kernel area on real lab hosts: sysctls, modules, core dumps, mounts.

Hardened with the strict baseline (so the level-2 controls run too) through the area's roles
only; then every control of the area passes or is not-applicable with a reason on every host,
a drift is found and repaired, a second run changes nothing, and IPv6 keeps working.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import changed_per_host, run_cli

from cityguard.config import content_root

pytestmark = pytest.mark.integration

ROLES = "sysctl,kernel_modules,core_dumps,mounts"
CONTROL_FILES = ("sysctl", "kernel_modules", "core_dumps", "mounts")
IPV6_KEYS = ("accept_ra", "autoconf", "dad_transmits")
# what a lab container cannot hold (docs/lab.md), and nothing else
NOT_APPLICABLE_REASONS = re.compile(
    r"sysctls are global|only in the machine's initial network namespace|"
    r"shares the machine's kernel"
)


def control_ids() -> list[str]:
    ids = []
    for name in CONTROL_FILES:
        path = content_root() / "policies" / "controls" / f"{name}.yml"
        ids += [c["id"] for c in yaml.safe_load(path.read_text())["controls"]]
    return ids


def check(site: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(
        "check",
        "--site",
        str(site),
        "--controls",
        ",".join(control_ids()),
        "--format",
        "json",
        *extra,
    )
    assert out, err
    return code, json.loads(out)


def harden(site: Path, *extra: str) -> tuple[int, str]:
    code, out, err = run_cli("harden", "--site", str(site), "--tags", ROLES, "-q", *extra)
    return code, out + err


def ipv6_values(lab, host: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    keys = [f"net.ipv6.conf.{i}.{k}" for i in ("all", "default", "host0") for k in IPV6_KEYS]
    text = lab.ssh(host, "sysctl " + " ".join(keys))
    return dict(line.split(" = ") for line in text.splitlines())


@pytest.fixture(scope="module")
def env(lab_session) -> Iterator[pytest.MonkeyPatch]:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
        yield patch


@pytest.fixture(scope="module")
def before(lab_session, env) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """The IPv6 autoconfiguration values of every host before the area hardens it."""
    return {h.name: ipv6_values(lab_session, h.name) for h in lab_session.lab.hosts}


@pytest.fixture(scope="module")
def hardened(strict_site, before, env, lab_session) -> dict[str, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    code, text = harden(strict_site)
    assert code == 0, text
    first = time.monotonic() - started
    assert all(n > 0 for n in changed_per_host(lab_session.state_dir).values())
    started = time.monotonic()
    code, text = harden(strict_site)
    second = time.monotonic() - started
    assert code == 0, text
    return {"first": first, "second": second}


def test_second_harden_changes_nothing(hardened, lab) -> None:  # type: ignore[no-untyped-def]
    assert changed_per_host(lab.state_dir) == {h.name: 0 for h in lab.lab.hosts}
    print(f"harden: first {hardened['first']:.1f} s, second {hardened['second']:.1f} s")


def test_every_control_passes_or_is_not_applicable_with_reason(  # type: ignore[no-untyped-def]
    hardened, strict_site, lab
) -> None:
    started = time.monotonic()
    code, report = check(strict_site)
    print(f"check: {time.monotonic() - started:.1f} s for {len(lab.lab.hosts)} hosts")
    assert code == 0, [c for c in report["controls"] if c["outcome"] != "pass"]
    hosts = {h.name for h in lab.lab.hosts}
    assert {(c["host"], c["control"]) for c in report["controls"]} == {
        (h, cid) for h in hosts for cid in control_ids()
    }
    checks_per_host: dict[str, int] = dict.fromkeys(hosts, 0)
    for control in report["controls"]:
        assert control["outcome"] == "pass", control
        for result in control["checks"]:
            checks_per_host[control["host"]] += 1
            if result["outcome"] == "not-applicable":
                assert NOT_APPLICABLE_REASONS.search(result["reason"] or ""), result
            else:
                assert result["outcome"] == "pass" and result["observed"], result
    assert all(n >= 120 for n in checks_per_host.values()), checks_per_host
    # the router forwards, the others do not: the role and the check follow the same groups
    forwarding = {
        (c["host"], r["check_id"].split(":")[-1].rstrip("]")): r["observed"]
        for c in report["controls"]
        if c["control"] == "CG-NET-010"
        for r in c["checks"]
        if "test_forwarding_active" in r["check_id"]
    }
    assert forwarding[("router1", "net.ipv4.ip_forward")] == "net.ipv4.ip_forward (router): 1"
    assert forwarding[("web1", "net.ipv4.ip_forward")] == "net.ipv4.ip_forward (not a router): 0"


def test_drift_is_detected_and_repaired(hardened, strict_site, lab) -> None:  # type: ignore[no-untyped-def]
    lab.ssh(
        "web1",
        "sysctl -qw net.ipv4.conf.all.send_redirects=1 && mount -o remount,exec /dev/shm && "
        "sed -i '/^blacklist sctp/d' /etc/modprobe.d/00-cityguard.conf",
    )
    code, report = check(strict_site, "--limit", "web1,db1")
    assert code == 1
    failed = {
        (c["host"], c["control"]): [r for r in c["checks"] if r["outcome"] == "fail"]
        for c in report["controls"]
        if c["outcome"] != "pass"
    }
    assert set(failed) == {("web1", "CG-NET-004"), ("web1", "CG-MNT-002"), ("web1", "CG-MOD-005")}
    assert [r["observed"] for r in failed[("web1", "CG-NET-004")]] == [
        "net.ipv4.conf.all.send_redirects: 1"
    ]
    assert failed[("web1", "CG-MNT-002")][0]["observed"].startswith("/dev/shm: without noexec")
    assert failed[("web1", "CG-MOD-005")][0]["check_id"].endswith(
        "test_module_blacklisted[CG-MOD-005:sctp]"
    )

    code, text = harden(strict_site, "--limit", "web1")
    assert code == 0, text
    assert changed_per_host(lab.state_dir) == {"web1": 3}
    code, report = check(strict_site, "--limit", "web1,db1")
    assert code == 0, [c for c in report["controls"] if c["outcome"] != "pass"]


def test_hardening_keeps_ipv6_working(hardened, before, lab) -> None:  # type: ignore[no-untyped-def]
    hosts = lab.lab.hosts
    # neighbour discovery and echo over IPv6 (link-local: global addresses come with the IPv6
    # rollout) between every two hosts of a segment, through both hosts' firewalls
    for source in hosts:
        for target in hosts:
            for link in source.links:
                theirs = target.link_on(link.network)
                if source is target or theirs is None:
                    continue
                shown = lab.ssh(
                    target.name, f"ip -6 -o addr show dev {theirs.interface} scope link"
                )
                address = shown.split()[3].split("/")[0]
                lab.ssh(source.name, f"ping -6 -c 1 -W 3 {address}%{link.interface}")
    for host in hosts:
        for address in (host.ipv4,):
            # a fresh connection to the address itself, not through a shared control socket
            done = subprocess.run(
                [
                    "ssh",
                    "-F",
                    str(lab.lab.ssh_config),
                    "-o",
                    "ControlPath=none",
                    "-o",
                    f"HostName={address}",
                    host.name,
                    "true",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, f"ssh {host.name} at {address}: {done.stderr}"
        after = ipv6_values(lab, host.name)
        # the kernel's defaults: RAs accepted, SLAAC on, duplicate address detection on
        for interface in ("all", "default"):
            for key in IPV6_KEYS:
                assert after[f"net.ipv6.conf.{interface}.{key}"] == "1", (host.name, after)
        assert after["net.ipv6.conf.host0.autoconf"] == "1", (host.name, after)
        assert after["net.ipv6.conf.host0.dad_transmits"] == "1", (host.name, after)
        # systemd-networkd owns host0's accept_ra (it handles RAs itself): untouched
        key = "net.ipv6.conf.host0.accept_ra"
        assert after[key] == before[host.name][key], (host.name, before[host.name], after)
