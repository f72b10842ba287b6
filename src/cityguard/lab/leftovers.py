"""Everything on this machine that belongs to a lab, found by name rather than by state.

Every name (bridge, machines, veths, network namespaces, cgroups, mount points, socket
directories) carries the lab id, so a lab whose state file was lost after a crash can still be
found and removed, and a lab never touches another lab's resources.
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cityguard.lab import host as lab_host
from cityguard.lab import network, plain

MACHINE_PATTERN = re.compile(r"^cg([0-9a-f]{6})h\d+$")
BRIDGE_PATTERN = re.compile(r"^cg([0-9a-f]{6})(?:br|n\d+)$")  # br: labs of one bridge
VETH_PATTERN = re.compile(r"^cg([0-9a-f]{6})h\d+v\d*$")
NETNS_DIR = Path("/run/netns")
SOCKET_ROOT = Path("/run/cityguard")  # one directory per lab, named by its id: SSH sockets
LAB_ID_PATTERN = re.compile(r"^([0-9a-f]{6})$")


@dataclass
class Leftovers:
    processes: dict[int, str] = field(default_factory=dict)  # nspawn or unshare pid -> machine
    mounts: list[Path] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)  # machine names
    bridges: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)  # machine names (plain hosts)
    veths: list[str] = field(default_factory=list)  # this machine's end: <machine>v<n>
    socket_dirs: list[Path] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.processes
            or self.mounts
            or self.cgroups
            or self.bridges
            or self.netns
            or self.veths
            or self.socket_dirs
        )


def _machine_of_nspawn(argv: list[str]) -> str | None:
    if argv and argv[0].endswith("systemd-nspawn"):
        for arg in argv:
            if arg.startswith("--machine="):
                return arg[len("--machine=") :]
    return None


def find_leftovers(lab_id: str | None = None) -> Leftovers:
    """Find lab resources by their names; lab_id None finds those of every cityguard lab."""

    def ours(match: re.Match[str] | None) -> bool:
        return match is not None and (lab_id is None or match.group(1) == lab_id)

    found = Leftovers()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        machine = _machine_of_nspawn(argv) or plain.machine_of(argv)
        if machine is not None and ours(MACHINE_PATTERN.match(machine)):
            found.processes[int(proc.name)] = machine
    for line in Path("/proc/mounts").read_text().splitlines():
        mountpoint = Path(line.split()[1].replace("\\040", " "))
        if mountpoint.name == "root" and ours(MACHINE_PATTERN.match(mountpoint.parent.name)):
            found.mounts.append(mountpoint)
    for hierarchy in lab_host.CGROUP_HIERARCHIES:
        if hierarchy.exists():
            found.cgroups += [
                d.name
                for d in hierarchy.iterdir()
                if d.is_dir() and ours(MACHINE_PATTERN.match(d.name))
            ]
    found.cgroups = sorted(set(found.cgroups))
    links = sorted(d.name for d in Path("/sys/class/net").iterdir())
    found.bridges = [name for name in links if ours(BRIDGE_PATTERN.match(name))]
    found.veths = [name for name in links if ours(VETH_PATTERN.match(name))]
    if NETNS_DIR.is_dir():
        found.netns = sorted(
            d.name for d in NETNS_DIR.iterdir() if ours(MACHINE_PATTERN.match(d.name))
        )
    if SOCKET_ROOT.is_dir():
        found.socket_dirs = sorted(
            d for d in SOCKET_ROOT.iterdir() if ours(LAB_ID_PATTERN.match(d.name))
        )
    return found


def _stop(pid: int, machine: str) -> None:
    if plain.is_our_unshare(pid, machine):
        plain.stop(pid, machine)
    else:
        lab_host.stop(pid, machine)  # does nothing unless pid is still our nspawn


def remove_leftovers(found: Leftovers) -> None:
    """Stop hosts first (in parallel), then cgroups, mounts, host networks, bridges, sockets."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: _stop(*item), found.processes.items()))
    for machine in found.cgroups:
        lab_host.remove_cgroups(machine)
    for mountpoint in found.mounts:
        lab_host.unmount(mountpoint)
    for veth in found.veths:
        network.delete_link(veth)
    for machine in found.netns:
        plain.remove_network(machine)
    for bridge in found.bridges:
        network.delete_link(bridge)
    for directory in found.socket_dirs:
        shutil.rmtree(directory, ignore_errors=True)
