"""Lab hosts come up reachable over both IP stacks and go down leaving nothing behind."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityguard.config import cache_dir, content_root
from cityguard.lab import HostSpec, LabError, find_leftovers, status
from cityguard.lab import host as lab_host
from cityguard.lab import lab as lab_engine
from cityguard.lab.description import load_lab_file
from cityguard.lab.network import IPV4_POOL

pytestmark = pytest.mark.integration
SPECS = [HostSpec("alpha1", ("web",)), HostSpec("beta1", ("db",))]
# the example site's lab description: the image the other integration tests use (no rebuild)
EXAMPLE_LAB = load_lab_file(content_root() / "examples" / "site" / "lab.yml")


def lab_up(state_dir: Path, specs: list[HostSpec], flavour: str = "auto") -> lab_engine.Lab:
    return lab_engine.up(state_dir, cache_dir(), specs, flavour, description=EXAMPLE_LAB)


# any lab's names; another lab may run concurrently, and its own tests account for it
LAB_NAME = re.compile(r"cg[0-9a-f]{6}(h\d+|br|n\d+)")


def machine_state() -> dict[str, str]:
    """What a lab must not leave changed on this machine (lines naming a lab are left out:
    find_leftovers checks this lab's own resources)."""

    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def without_labs(text: str) -> str:
        return "".join(ln for ln in text.splitlines(True) if not LAB_NAME.search(ln))

    return {
        "hostname": socket.gethostname(),
        "links": without_labs(out("ip", "-br", "link")),
        "netns": without_labs(out("ip", "netns", "list")),
        "routes6": without_labs(out("ip", "-6", "route", "show", "table", "main")),
        "routes4": without_labs(out("ip", "-4", "route", "show", "table", "main")),
        "overlays": without_labs(
            "".join(
                ln
                for ln in Path("/proc/mounts").read_text().splitlines(True)
                if ln.split()[2] == "overlay"
            )
        ),
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
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), host, command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_lab_works(lab: lab_engine.Lab, state_dir: Path) -> None:
    """What both flavours must give: SSH, IPv4 by name, IPv6 link-local only, hostnames."""
    _, hosts = status(state_dir)
    assert [(h.name, h.running, h.ssh) for h in hosts] == [
        ("alpha1", True, True),
        ("beta1", True, True),
    ]
    for host in lab.hosts:
        assert ipaddress.IPv4Address(host.ipv4) in IPV4_POOL
        # management is IPv4: a global IPv6 address comes only with the IPv6 rollout
        assert ssh(lab, host.name, "ip -6 -o addr show scope global").stdout == ""
        assert ssh(lab, host.name, "ip -6 -o addr show dev host0 scope link").stdout
    # hosts find each other by name (no DNS in the lab)
    assert ssh(lab, "alpha1", "sudo ping -4 -c1 -W2 beta1").returncode == 0
    assert ssh(lab, "alpha1", "hostname").stdout.strip() == "alpha1"
    assert ssh(lab, "beta1", "hostname").stdout.strip() == "beta1"


def assert_down_leaves_nothing(
    lab: lab_engine.Lab, state_dir: Path, before: dict[str, str]
) -> None:
    assert find_leftovers(lab.lab_id).empty()
    assert lab_processes(lab) == []
    assert not lab.socket_dir.exists()
    assert not (state_dir / "lab").exists()
    assert machine_state() == before


def test_lab_up_status_down_leaves_nothing(state_dir: Path) -> None:
    before = machine_state()
    lab = lab_up(state_dir, SPECS, flavour="nspawn")
    try:
        assert lab.flavour == "nspawn"
        assert_lab_works(lab, state_dir)
        # postgresql runs only on db hosts
        assert ssh(lab, "beta1", "systemctl is-enabled postgresql").stdout.strip() == "enabled"
        assert ssh(lab, "alpha1", "systemctl is-enabled postgresql").stdout.strip() != "enabled"
    finally:
        assert lab_engine.down(state_dir) == lab.lab_id
    assert_down_leaves_nothing(lab, state_dir, before)


def test_plain_lab_up_status_down_leaves_nothing(state_dir: Path) -> None:
    before = machine_state()
    lab = lab_up(state_dir, SPECS, flavour="plain")
    try:
        assert lab.flavour == "plain"
        assert json.loads((lab.directory / lab_engine.STATE_FILE).read_text())["flavour"] == "plain"
        assert_lab_works(lab, state_dir)
        # postgresql runs only on db hosts (no systemd: asked of the cluster itself)
        wait_ready = "for i in $(seq 100); do pg_isready -q && exit; sleep 0.1; done; exit 1"
        assert ssh(lab, "beta1", wait_ready).returncode == 0
        assert "online" in ssh(lab, "beta1", "pg_lsclusters -h").stdout
        assert "online" not in ssh(lab, "alpha1", "pg_lsclusters -h").stdout
        # global sysctls are read-only, the host's own network ones are not (as under nspawn)
        assert ssh(lab, "alpha1", "sudo sysctl -qw kernel.randomize_va_space=2").returncode != 0
        assert ssh(lab, "alpha1", "sudo sysctl -qw net.ipv4.ip_forward=0").returncode == 0
        # no SLAAC until the IPv6 rollout asks for it, like networkd's IPv6AcceptRA=no
        accept_ra = "cat /proc/sys/net/ipv6/conf/host0/accept_ra"
        assert ssh(lab, "alpha1", accept_ra).stdout.strip() == "0"
        assert ssh(lab, "alpha1", "systemd-detect-virt --container").stdout.strip() != "none"
        assert ssh(lab, "alpha1", "sudo service ssh reload").returncode == 0
        assert ssh(lab, "alpha1", "true").returncode == 0
    finally:
        assert lab_engine.down(state_dir) == lab.lab_id
    assert_down_leaves_nothing(lab, state_dir, before)


# a site laid out in segments: a router between front and back, a recovery segment alone
SEGMENTED = [
    HostSpec("alpha1", ("web",), ("front",)),
    HostSpec("beta1", ("db",), ("back",)),
    HostSpec("gamma1", ("router",), ("front", "back")),
    HostSpec("delta1", ("scratch",), ("recovery",)),
]


@pytest.mark.parametrize("flavour", ["nspawn", "plain"])
def test_segments_get_their_own_bridges_and_only_the_router_joins_them(
    state_dir: Path, flavour: str
) -> None:
    before = machine_state()
    lab = lab_up(state_dir, SEGMENTED, flavour=flavour)
    try:
        assert [n.name for n in lab.networks] == ["front", "back", "recovery"]
        bridges = {n.name: n.bridge for n in lab.networks}
        for host in lab.hosts:
            for link in host.links:  # this machine's end of each link is a port of its bridge
                master = Path("/sys/class/net", link.outside, "master").resolve().name
                assert master == bridges[link.network], (host.name, link)
        ping = "ping -4 -c1 -W2 {}"
        # across segments through the router: one hop (TTL 63)
        assert "ttl=63" in ssh(lab, "alpha1", ping.format("beta1")).stdout
        assert "ttl=64" in ssh(lab, "gamma1", ping.format("beta1")).stdout
        # the recovery segment has no router: no route to anyone, but this machine reaches it
        for target in ("alpha1", "beta1", "gamma1"):
            refused = ssh(lab, "delta1", ping.format(target))
            assert refused.returncode != 0 and "unreachable" in refused.stderr, refused
        assert ssh(lab, "delta1", "hostname").stdout.strip() == "delta1"
        # this machine routes nothing: each bridge holds only its own connected /24
        routes = subprocess.run(
            ["ip", "-4", "route", "show"], capture_output=True, text=True, check=True
        ).stdout
        lab_routes = [r for r in routes.splitlines() if f"cg{lab.lab_id}" in r]
        assert sorted(r.split()[0] for r in lab_routes) == sorted(
            n.ipv4_prefix for n in lab.networks
        ), lab_routes
        assert all(" via " not in r for r in lab_routes), lab_routes
    finally:
        assert lab_engine.down(state_dir) == lab.lab_id
    assert_down_leaves_nothing(lab, state_dir, before)


def test_auto_falls_back_to_plain_when_nspawn_fails(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = machine_state()

    def broken_boot(*_args: object) -> int:
        raise LabError("simulated nspawn failure")

    monkeypatch.setattr(lab_host, "boot", broken_boot)
    with caplog.at_level(logging.WARNING, logger="cityguard.lab"):
        lab = lab_up(state_dir, SPECS[:1])
    try:
        assert lab.flavour == "plain"
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
            "lab hosts did not boot under systemd-nspawn (simulated nspawn failure): "
            "retrying without systemd"
        ]
        assert [(h.name, h.ssh) for h in status(state_dir)[1]] == [("alpha1", True)]
    finally:
        assert lab_engine.down(state_dir) == lab.lab_id
    assert_down_leaves_nothing(lab, state_dir, before)


@pytest.mark.parametrize("flavour", ["nspawn", "plain"])
def test_leftovers_are_found_and_removed_after_state_is_lost(state_dir: Path, flavour: str) -> None:
    lab = lab_up(state_dir, SPECS[:1], flavour=flavour)
    (state_dir / "lab" / lab_engine.STATE_FILE).unlink()  # as if cityguard crashed
    machine = lab.hosts[0].machine
    found = find_leftovers(lab.lab_id)
    assert list(found.processes.values()) == [machine]
    assert [m.parent.name for m in found.mounts] == [machine]
    assert found.bridges == [n.bridge for n in lab.networks]
    assert found.socket_dirs == [lab.socket_dir]
    if flavour == "nspawn":
        assert (found.cgroups, found.netns, found.veths) == ([machine], [], [])
    else:
        assert (found.cgroups, found.netns, found.veths) == ([], [machine], [machine + "v0"])
    lab_engine.remove_leftovers(found)
    assert find_leftovers(lab.lab_id).empty()
    assert lab_processes(lab) == []
    assert not lab.socket_dir.exists()


def test_a_second_lab_for_the_same_site_is_refused(state_dir: Path) -> None:
    lab_up(state_dir, SPECS[:1])
    with pytest.raises(lab_engine.LabError, match="already up"):
        lab_up(state_dir, SPECS[:1])


PROBE_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Read the addresses of the host Ansible really reached
      ansible.builtin.command: ip -4 -br addr show dev host0
      register: addresses
      changed_when: false
    - name: It is this lab's host, not a same-named host of another lab
      ansible.builtin.assert:
        that: cityguard_lab_ipv4 in addresses.stdout
"""


def test_two_labs_with_the_same_host_names_never_share_connections(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityguard.ansible import PlaybookRequest, run_playbook

    monkeypatch.delenv("ANSIBLE_SSH_CONTROL_PATH_DIR", raising=False)
    other_state = Path(tempfile.mkdtemp(prefix="cgl-", dir="/tmp"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "probe.yml").write_text(PROBE_PLAYBOOK)
    try:
        labs = [
            lab_up(state_dir, SPECS[:1]),
            lab_up(other_state, SPECS[:1]),
        ]
        for round_number, lab in enumerate([*labs, *labs]):
            path = tmp_path / f"inventory-{round_number}.yml"
            path.write_text(json.dumps({"all": {"hosts": lab.hostvars()}}))
            result = run_playbook(
                PlaybookRequest(
                    project_dir=project,
                    playbook="probe.yml",
                    inventory=path,
                    run_dir=tmp_path / f"run-{round_number}",
                ),
            )
            assert result.ok, [t.message for t in result.tasks if t.status == "failed"]
            assert result.hosts["alpha1"].ok == 2  # both tasks really ran on a host
    finally:
        lab_engine.down(other_state)
        shutil.rmtree(other_state, ignore_errors=True)
