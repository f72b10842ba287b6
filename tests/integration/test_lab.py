"""Lab hosts come up reachable over both IP stacks and go down leaving nothing behind."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityguard.config import cache_dir
from cityguard.lab import HostSpec, find_leftovers, status
from cityguard.lab import lab as lab_engine
from cityguard.lab.network import IPV4_POOL

pytestmark = pytest.mark.integration
SPECS = [HostSpec("alpha1", ("web",)), HostSpec("beta1", ("db",))]


def machine_state() -> dict[str, str]:
    """What a lab must not leave changed on this machine."""
    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    return {
        "netns": out("ip", "netns", "list"),
        "routes6": out("ip", "-6", "route", "show", "table", "main"),
        "routes4": out("ip", "-4", "route", "show", "table", "main"),
        "overlays": "".join(ln for ln in Path("/proc/mounts").read_text().splitlines(True)
                            if ln.split()[2] == "overlay"),
    }


def lab_processes(lab: lab_engine.Lab) -> list[str]:
    """Any process still mentioning the lab: nspawn, or an ssh master using its config."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if f"cg{lab.lab_id}" in cmdline or str(lab.directory) in cmdline:
                found.append(cmdline)
    return found


@pytest.fixture
def state_dir(root: None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cgl-", dir="/tmp"))
    try:
        yield path
    finally:
        lab_engine.down(path)
        shutil.rmtree(path, ignore_errors=True)


def ssh(lab: lab_engine.Lab, host: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-F", str(lab.ssh_config), host, command],
                          capture_output=True, text=True, timeout=30, check=False)


def test_lab_up_status_down_leaves_nothing(state_dir: Path) -> None:
    before = machine_state()
    lab = lab_engine.up(state_dir, cache_dir(), SPECS)
    try:
        _, hosts = status(state_dir)
        assert [(h.name, h.running, h.ssh) for h in hosts] == [
            ("alpha1", True, True), ("beta1", True, True)]
        for host in lab.hosts:
            assert ipaddress.IPv6Address(host.ipv6) in ipaddress.IPv6Network("fc00::/7")
            assert ipaddress.IPv4Address(host.ipv4) in IPV4_POOL
        # hosts find each other by name (no DNS in the lab) over both stacks
        assert ssh(lab, "alpha1", "sudo ping -6 -c1 -W2 beta1").returncode == 0
        assert ssh(lab, "alpha1", "sudo ping -4 -c1 -W2 beta1").returncode == 0
        assert ssh(lab, "alpha1", "hostname").stdout.strip() == "alpha1"
        # postgresql runs only on db hosts
        assert ssh(lab, "beta1", "systemctl is-enabled postgresql").stdout.strip() == "enabled"
        assert ssh(lab, "alpha1", "systemctl is-enabled postgresql").stdout.strip() != "enabled"
    finally:
        assert lab_engine.down(state_dir) == lab.lab_id
    assert find_leftovers(lab.lab_id).empty()
    assert lab_processes(lab) == []
    assert not lab.socket_dir.exists()
    assert not (state_dir / "lab").exists()
    assert machine_state() == before


def test_leftovers_are_found_and_removed_after_state_is_lost(state_dir: Path) -> None:
    lab = lab_engine.up(state_dir, cache_dir(), SPECS[:1])
    (state_dir / "lab" / lab_engine.STATE_FILE).unlink()  # as if cityguard crashed
    found = find_leftovers(lab.lab_id)
    assert list(found.processes.values()) == [lab.hosts[0].machine]
    assert [m.parent.name for m in found.mounts] == [lab.hosts[0].machine]
    assert found.cgroups == [lab.hosts[0].machine]
    assert found.bridges == [lab.bridge]
    lab_engine.remove_leftovers(found)
    assert find_leftovers(lab.lab_id).empty()
    assert lab_processes(lab) == []


def test_a_second_lab_for_the_same_site_is_refused(state_dir: Path) -> None:
    lab_engine.up(state_dir, cache_dir(), SPECS[:1])
    with pytest.raises(lab_engine.LabError, match="already up"):
        lab_engine.up(state_dir, cache_dir(), SPECS[:1])
