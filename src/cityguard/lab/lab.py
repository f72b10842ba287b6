"""Bring a lab up, report on it, and take it down leaving nothing behind.

Every name (bridge, machines, cgroups, mount points, control sockets) carries the lab id, so
two labs never collide and a lab whose state file was lost can still be found and removed.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cityguard.lab import host as lab_host
from cityguard.lab import network
from cityguard.lab.command import LabError, run
from cityguard.lab.image import ADMIN_USER, ensure_image
from cityguard.lab.requirements import ensure_packages

STATE_FILE = "lab.json"
MACHINE_PATTERN = re.compile(r"^cg([0-9a-f]{6})h\d+$")
BRIDGE_PATTERN = re.compile(r"^cg([0-9a-f]{6})br$")
SOCKET_ROOT = Path("/run/cityguard")
SSH_WAIT_S = 90.0


@dataclass(frozen=True)
class HostSpec:
    """What the lab needs to know about an inventory host: its name and its groups."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass
class Lab:
    lab_id: str
    directory: Path
    bridge: str
    hosts: list[lab_host.HostPlan]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def key_path(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def hostvars_path(self) -> Path:
        return self.directory / "hostvars.json"

    @property
    def socket_dir(self) -> Path:
        # unix socket paths are limited to ~108 bytes, too short for deep state directories
        return SOCKET_ROOT / self.lab_id

    def hostvars(self) -> dict[str, dict[str, str]]:
        """Ansible connection variables per host; ssh_config carries keys and host keys."""
        return {
            h.name: {
                "ansible_host": h.name,
                "ansible_user": ADMIN_USER,
                "ansible_ssh_common_args": f"-F {self.ssh_config}",
                "ansible_python_interpreter": "/usr/bin/python3",
                "cityguard_lab_ipv6": h.ipv6,
                "cityguard_lab_ipv4": h.ipv4,
            }
            for h in self.hosts
        }

    def save(self) -> None:
        data = {
            "lab_id": self.lab_id,
            "bridge": self.bridge,
            "pids": self.pids,
            "started_at": self.started_at,
            "hosts": [asdict(h) for h in self.hosts],
        }
        (self.directory / STATE_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Lab | None:
        path = directory / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        hosts = [lab_host.HostPlan(**{**h, "groups": tuple(h["groups"])}) for h in data["hosts"]]
        return cls(
            data["lab_id"], directory, data["bridge"], hosts, data["pids"], data["started_at"]
        )


def up(state_dir: Path, cache_dir: Path, specs: list[HostSpec]) -> Lab:
    """Create the bridge and boot every host; on any failure, remove what was made."""
    if not specs:
        raise LabError("no hosts to start: the inventory is empty")
    directory = state_dir / "lab"
    existing = Lab.load(directory)
    if existing is not None:
        raise LabError(
            f"a lab ({existing.lab_id}) is already up for this site: run 'cityguard lab down' first"
        )
    ensure_packages()
    image = ensure_image(cache_dir)
    lab_id = secrets.token_hex(3)
    plan = network.plan_addresses(lab_id, network.ipv4_networks_in_use())
    hosts = [
        lab_host.HostPlan(
            spec.name,
            f"cg{lab_id}h{index}",
            spec.groups,
            str(plan.host_ipv6(index)),
            str(plan.host_ipv4(index)),
            64,
            24,
        )
        for index, spec in enumerate(specs)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    lab = Lab(lab_id, directory, network.bridge_name(lab_id), hosts, started_at=time.time())
    try:
        lab.save()
        _start(lab, plan, image.rootfs)
    except BaseException:
        down(state_dir)
        raise
    return lab


def _start(lab: Lab, plan: network.AddressPlan, rootfs: Path) -> None:
    network.create_bridge(lab.lab_id, plan)
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"cityguard-lab-{lab.lab_id}",
            "-f",
            str(lab.key_path),
        ],
        what="generating the lab's SSH key",
    )
    public_key = lab.key_path.with_suffix(".pub").read_text()
    admin_uid = _uid_of(rootfs, ADMIN_USER)
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{h.ipv6} {h.name}\n{h.ipv4} {h.name}" for h in lab.hosts]
    etc_hosts = "\n".join(lines) + "\n"

    def prepare_and_boot(plan_host: lab_host.HostPlan) -> tuple[str, int, str]:
        root = lab_host.prepare(plan_host, lab.directory, rootfs, admin_uid, public_key, etc_hosts)
        pid = lab_host.boot(plan_host, root, lab.bridge, lab.directory)
        return plan_host.machine, pid, lab_host.host_public_key(root)

    with ThreadPoolExecutor(max_workers=8) as pool:
        started = list(pool.map(prepare_and_boot, lab.hosts))
    lab.pids = {machine: pid for machine, pid, _ in started}
    lab.save()
    host_keys = {h.name: key for h, (_, _, key) in zip(lab.hosts, started, strict=True)}
    _write_ssh_files(lab, host_keys)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda h: _wait_for_ssh(lab, h), lab.hosts))


def _uid_of(rootfs: Path, user: str) -> int:
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2])
    raise LabError(f"the lab image has no user {user}")


def _write_ssh_files(lab: Lab, host_keys: dict[str, str]) -> None:
    lab.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    known_hosts = lab.directory / "known_hosts"
    known_hosts.write_text("".join(f"{n} ssh-ed25519 {k}\n" for n, k in host_keys.items()))
    blocks = [
        f"Host {h.name}\n"
        f"  HostName {h.ipv6}\n"
        f"  User {ADMIN_USER}\n"
        f"  IdentityFile {lab.key_path}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        f"  HostKeyAlias {h.name}\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        "  ConnectTimeout 5\n"
        "  ControlMaster auto\n"
        f"  ControlPath {lab.socket_dir}/%n\n"
        "  ControlPersist 60s\n"
        for h in lab.hosts
    ]
    lab.ssh_config.write_text("\n".join(blocks))
    lab.hostvars_path.write_text(json.dumps(lab.hostvars(), indent=2))


def ssh_answers(lab: Lab, name: str, timeout_s: int = 3) -> bool:
    """A fresh login (no shared control socket), so the answer is about sshd right now."""
    argv = [
        "ssh",
        "-F",
        str(lab.ssh_config),
        "-o",
        "ControlPath=none",
        "-o",
        f"ConnectTimeout={timeout_s}",
        name,
        "true",
    ]
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout_s + 5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _wait_for_ssh(lab: Lab, plan_host: lab_host.HostPlan) -> None:
    deadline = time.monotonic() + SSH_WAIT_S
    while time.monotonic() < deadline:
        if not lab_host.is_our_nspawn(lab.pids[plan_host.machine], plan_host.machine):
            log = lab_host.host_dir(lab.directory, plan_host.machine) / "console.log"
            raise LabError(f"host {plan_host.name} stopped while booting (see {log})")
        if ssh_answers(lab, plan_host.name, timeout_s=1):
            return
        time.sleep(0.1)
    raise LabError(f"host {plan_host.name} did not answer SSH within {SSH_WAIT_S:.0f} s")


@dataclass
class HostStatus:
    name: str
    machine: str
    ipv6: str
    ipv4: str
    running: bool
    ssh: bool


def status(state_dir: Path) -> tuple[Lab | None, list[HostStatus]]:
    lab = Lab.load(state_dir / "lab")
    if lab is None:
        return None, []

    def probe(h: lab_host.HostPlan) -> HostStatus:
        running = lab_host.is_our_nspawn(lab.pids.get(h.machine, -1), h.machine)
        return HostStatus(
            h.name, h.machine, h.ipv6, h.ipv4, running, running and ssh_answers(lab, h.name)
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return lab, list(pool.map(probe, lab.hosts))


@dataclass
class Leftovers:
    """Everything on this machine that belongs to a lab, found by name rather than state."""

    processes: dict[int, str] = field(default_factory=dict)  # nspawn pid -> machine
    mounts: list[Path] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)  # machine names
    bridges: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.processes or self.mounts or self.cgroups or self.bridges)


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
        if argv and argv[0].endswith("systemd-nspawn"):
            for arg in argv:
                if arg.startswith("--machine=") and ours(MACHINE_PATTERN.match(arg[10:])):
                    found.processes[int(proc.name)] = arg[10:]
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
    found.bridges = [
        d.name for d in Path("/sys/class/net").iterdir() if ours(BRIDGE_PATTERN.match(d.name))
    ]
    return found


def remove_leftovers(found: Leftovers) -> None:
    """Stop hosts first (in parallel), then cgroups, mounts and bridges, in that order."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: lab_host.stop(*item), found.processes.items()))
    for machine in found.cgroups:
        lab_host.remove_cgroups(machine)
    for mountpoint in found.mounts:
        lab_host.unmount(mountpoint)
    for bridge in found.bridges:
        network.delete_bridge(bridge)


def down(state_dir: Path) -> str | None:
    """Take the site's lab down; returns its id, or None when there was none."""
    directory = state_dir / "lab"
    lab = Lab.load(directory)
    if lab is None:
        return None
    remove_leftovers(find_leftovers(lab.lab_id))
    remaining = find_leftovers(lab.lab_id)
    if not remaining.empty():
        raise LabError(f"lab {lab.lab_id} could not be fully removed: {remaining}")
    shutil.rmtree(lab.socket_dir, ignore_errors=True)
    shutil.rmtree(directory)
    return lab.lab_id
