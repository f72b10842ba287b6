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

from cityguard.lab.command import LabError, run
from cityguard.lab.description import HostServices

CGROUP_HIERARCHIES = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
# where a unit's file may be, inside a host's root; enabling links to the first one found
UNIT_DIRS = ("etc/systemd/system", "lib/systemd/system")
WANTS = "etc/systemd/system/multi-user.target.wants"


@dataclass(frozen=True)
class HostPlan:
    name: str  # the logical name from the inventory, also the hostname
    machine: str  # unique on this machine: cg<lab id>h<index>
    groups: tuple[str, ...]
    ipv6: str
    ipv4: str
    prefix_ipv6: int
    prefix_ipv4: int


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
    (root / "etc/systemd/network/10-host0.network").write_text(_network_unit(host))
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


def _network_unit(host: HostPlan) -> str:
    # DAD is skipped on the static addresses only so that boot does not wait for it; SLAAC
    # addresses added later by the IPv6 rollout keep normal duplicate-address detection.
    return (
        "[Match]\nName=host0\n\n[Network]\nLinkLocalAddressing=ipv6\nIPv6AcceptRA=no\n\n"
        f"[Address]\nAddress={host.ipv6}/{host.prefix_ipv6}\nDuplicateAddressDetection=none\n\n"
        f"[Address]\nAddress={host.ipv4}/{host.prefix_ipv4}\n"
    )


def host_public_key(root: Path) -> str:
    return (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split(" ")[1]


def boot(host: HostPlan, root: Path, bridge: str, lab_dir: Path) -> int:
    """Start systemd-nspawn in the host's own cgroups; returns the nspawn PID."""
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
                f"--network-bridge={bridge}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=enter_cgroups,
        )
    return process.pid


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
