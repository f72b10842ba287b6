"""One lab host: an overlay on the shared image, its own identity, booted with systemd-nspawn.

Each host gets its own cgroup directories (without them two containers share a cgroup and one
systemd kills the other's services: docs/lab.md) and its own SSH host keys, which are written to
the lab's known_hosts so connections verify the host instead of trusting on first use. The units
the site's lab description names for some groups are enabled on the hosts of those groups only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cityguard.lab import network
from cityguard.lab.command import LabError, run
from cityguard.lab.description import HostServices

CGROUP_HIERARCHIES = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
# where a unit's file may be, inside a host's root; enabling links to the first one found
UNIT_DIRS = ("etc/systemd/system", "lib/systemd/system")
WANTS = "etc/systemd/system/multi-user.target.wants"
EXTRA_LINK_WAIT_S = 15.0


@dataclass(frozen=True)
class HostLink:
    """One network interface of a host: the lab network (bridge) it is on and its address."""

    network: str
    bridge: str
    interface: str  # the name inside the host: host0, host1, ...
    outside: str  # this machine's end of the veth pair, a port of the bridge
    ipv4: str
    prefix_ipv4: int
    # IPv4 routes to other segments through a router host on this link: (prefix, gateway)
    routes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HostPlan:
    name: str  # the logical name from the inventory, also the hostname
    machine: str  # unique on this machine: cg<lab id>h<index>
    groups: tuple[str, ...]
    links: tuple[HostLink, ...]  # the first is the one the control node manages it on

    @property
    def routes_ipv4(self) -> bool:
        """A host on several segments routes IPv4 between them, as a site's router does."""
        return len(self.links) > 1

    @property
    def ipv4(self) -> str:
        """The management address: on the host's first network."""
        return self.links[0].ipv4

    def link_on(self, network: str) -> HostLink | None:
        return next((link for link in self.links if link.network == network), None)


def host_dir(lab_dir: Path, machine: str) -> Path:
    return lab_dir / "hosts" / machine


def prepare(
    host: HostPlan,
    lab_dir: Path,
    image_rootfs: Path,
    admin_uid: int,
    public_key: str,
    etc_hosts: str,
    services: HostServices,
) -> Path:
    """Mount the host's overlay, write its identity and pick its units; returns the merged root."""
    base = host_dir(lab_dir, host.machine)
    upper, work, root = base / "upper", base / "work", base / "root"
    for path in (upper, work, root):
        path.mkdir(parents=True, exist_ok=True)
    run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={image_rootfs},upperdir={upper},workdir={work}",
            str(root),
        ],
        what=f"mounting the overlay of {host.name}",
    )
    run(["ssh-keygen", "-q", "-A", "-f", str(root)], what=f"generating host keys of {host.name}")
    (root / "etc/hostname").write_text(host.name + "\n")
    (root / "etc/hosts").write_text(etc_hosts)
    for link in host.links:
        unit = _network_unit(link, host.routes_ipv4)
        (root / f"etc/systemd/network/10-{link.interface}.network").write_text(unit)
    ssh_dir = root / "home" / "cgadmin" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public_key)
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, admin_uid, admin_uid)
    _select_units(root, services)
    return root


def _select_units(root: Path, services: HostServices) -> None:
    """Link the host's units into multi-user.target (as `systemctl enable` does for most
    services); unlink the units of groups the host is not in."""
    wants = root / WANTS
    for unit in services.disabled_units:
        (wants / unit).unlink(missing_ok=True)
    for unit in services.enabled_units:
        link = wants / unit
        found = unit_file(root, unit)
        if link.is_symlink() or found is None:
            continue  # missing_units refused a unit the image lacks before any host started
        wants.mkdir(parents=True, exist_ok=True)
        link.symlink_to(found)


def unit_file(root: Path, unit: str) -> Path | None:
    """The unit's file as the host sees it (a path inside the host); None when none or masked."""
    for directory in UNIT_DIRS:
        path = root / directory / unit
        if path.is_symlink():  # read, never followed: its target is inside the host
            return None if os.readlink(path) == "/dev/null" else Path("/", directory, unit)
        if path.is_file():
            return Path("/", directory, unit)
    return None


def missing_units(image_rootfs: Path, units: Iterable[str]) -> list[str]:
    """The units that no package in the image provides."""
    return [unit for unit in units if unit_file(image_rootfs, unit) is None]


def _network_unit(link: HostLink, forwarding: bool) -> str:
    """IPv4 only (management stays on IPv4), with routes to the other segments through their
    router; IPv6 link-local, and global IPv6 addresses only when the IPv6 rollout adds them.
    Router advertisements stay off until the rollout says."""
    routes = "".join(f"\n[Route]\nDestination={d}\nGateway={g}\n" for d, g in link.routes)
    return (
        f"[Match]\nName={link.interface}\n\n"
        "[Network]\nLinkLocalAddressing=ipv6\nIPv6AcceptRA=no\n"
        + ("IPForward=ipv4\n" if forwarding else "")
        + f"\n[Address]\nAddress={link.ipv4}/{link.prefix_ipv4}\n"
        + routes
    )


def host_public_key(root: Path) -> str:
    return (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split(" ")[1]


def boot(host: HostPlan, root: Path, lab_dir: Path) -> int:
    """Start systemd-nspawn in the host's own cgroups; returns the nspawn PID.

    The first link is nspawn's bridged ``host0``; every further one is an extra veth pair
    that nspawn creates and this function makes a port of the link's bridge.
    """
    cgroups = [hierarchy / host.machine for hierarchy in CGROUP_HIERARCHIES]
    for cgroup in cgroups:
        cgroup.mkdir(exist_ok=True)

    def enter_cgroups() -> None:
        for cgroup in cgroups:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    console = (host_dir(lab_dir, host.machine) / "console.log").open("wb")
    with console:
        process = subprocess.Popen(
            [
                "systemd-nspawn",
                "--quiet",
                "--directory",
                str(root),
                f"--machine={host.machine}",
                f"--hostname={host.name}",
                "--register=no",
                "--keep-unit",
                "--boot",
                f"--network-bridge={host.links[0].bridge}",
                *(
                    f"--network-veth-extra={link.outside}:{link.interface}"
                    for link in host.links[1:]
                ),
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=enter_cgroups,
        )
    for link in host.links[1:]:
        _attach_when_created(process, link, host.name)
    return process.pid


def _attach_when_created(process: subprocess.Popen[bytes], link: HostLink, name: str) -> None:
    deadline = time.monotonic() + EXTRA_LINK_WAIT_S
    while not network.link_exists(link.outside):
        if process.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"host {name}: nspawn did not create its link {link.outside}")
        time.sleep(0.02)
    network.attach(link.outside, link.bridge)


def is_our_nspawn(pid: int, machine: str) -> bool:
    """True only if pid is still the nspawn we started, so we never signal a stranger."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (
        bool(cmdline)
        and cmdline[0].endswith(b"systemd-nspawn")
        and f"--machine={machine}".encode() in cmdline
    )


def stop(pid: int, machine: str, timeout_s: float = 15.0) -> None:
    """Power the host off (SIGTERM makes nspawn shut systemd down cleanly), then kill if stuck."""
    if not is_our_nspawn(pid, machine):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_our_nspawn(pid, machine):
            break
        _reap(pid)
        time.sleep(0.05)
    else:
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when we are nspawn's parent, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def remove_cgroups(machine: str) -> None:
    """Remove the host's cgroup directories depth-first (a cgroup dir can only go when empty)."""
    for hierarchy in CGROUP_HIERARCHIES:
        top = hierarchy / machine
        if not top.exists():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda e: -e[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError as exc:
                raise LabError(f"removing cgroup {dirpath}: {exc.strerror}") from exc


def unmount(root: Path) -> None:
    if os.path.ismount(root):
        run(["umount", str(root)], what=f"unmounting {root}")
