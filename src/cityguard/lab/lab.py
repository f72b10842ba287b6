"""Bring a lab up, report on it, and take it down leaving nothing behind.

Every name (bridge, machines, cgroups, mount points, control sockets) carries the lab id, so
two labs never collide and a lab whose state file was lost can still be found and removed
(leftovers.py). Hosts boot with real systemd under nspawn (host.py) or, as a fallback, without
systemd (plain.py); lab.json records which. What the image holds and which services run on
which hosts comes from the site's lab description (description.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cityguard.config.overlay import INVENTORY_OVERLAY, write_inventory_overlay
from cityguard.lab import host as lab_host
from cityguard.lab import network, plain, sshconfig
from cityguard.lab.command import LabError, run
from cityguard.lab.description import LabDescription
from cityguard.lab.image import ADMIN_USER, ensure_image
from cityguard.lab.leftovers import SOCKET_ROOT
from cityguard.lab.leftovers import Leftovers as Leftovers  # re-exported for callers
from cityguard.lab.leftovers import find_leftovers as find_leftovers
from cityguard.lab.leftovers import remove_leftovers as remove_leftovers
from cityguard.lab.requirements import ensure_packages_for

log = logging.getLogger(__name__)

STATE_FILE = "lab.json"
SSH_WAIT_S = 90.0
# nspawn: real systemd (preferred); plain: namespaces + tini, no systemd (plain.py);
# auto: nspawn, falling back to plain when nspawn is missing or a host fails to boot under it
FLAVOURS = ("auto", "nspawn", "plain")


@dataclass(frozen=True)
class HostSpec:
    """What the lab needs to know about an inventory host: its name and its groups."""

    name: str
    groups: tuple[str, ...] = ()
    # the network segments the host sits on, in order (the first carries its management
    # address); none puts it on the lab's default network
    networks: tuple[str, ...] = ()


@dataclass
class Lab:
    lab_id: str
    directory: Path
    networks: list[network.LabNetwork]
    hosts: list[lab_host.HostPlan]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    flavour: str = "nspawn"  # how the hosts were booted: "nspawn" or "plain"

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

    def hostvars(self) -> dict[str, dict[str, Any]]:
        """Ansible connection variables per host; ssh_config carries keys and host keys.

        Ansible names its shared connections after host, port and user only, and every lab
        has a `web1` reached as cgadmin: without a control path directory of the lab's own, a
        run could reuse another lab's open connection and change the wrong host.
        """
        return {
            h.name: {
                "ansible_host": h.name,
                "ansible_user": ADMIN_USER,
                "ansible_ssh_common_args": f"-F {self.ssh_config}",
                "ansible_control_path_dir": str(self.socket_dir / "ansible"),
                "ansible_python_interpreter": "/usr/bin/python3",
                "cityguard_lab_ipv4": h.ipv4,
                # which interface is on which segment: the IPv6 rollout's legs
                "cityguard_interfaces": {link.network: link.interface for link in h.links},
            }
            for h in self.hosts
        }

    def save(self) -> None:
        data = {
            "lab_id": self.lab_id,
            "networks": [asdict(n) for n in self.networks],
            "pids": self.pids,
            "started_at": self.started_at,
            "flavour": self.flavour,
            "hosts": [asdict(h) for h in self.hosts],
        }
        (self.directory / STATE_FILE).write_text(json.dumps(data, indent=2))
        # The product reads connection details from this overlay, never from the lab itself.
        write_inventory_overlay(self.directory.parent, self.hostvars())

    @classmethod
    def load(cls, directory: Path) -> Lab | None:
        path = directory / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        hosts = [
            lab_host.HostPlan(
                h["name"],
                h["machine"],
                tuple(h["groups"]),
                tuple(lab_host.HostLink(**link) for link in h["links"]),
            )
            for h in data["hosts"]
        ]
        return cls(
            data["lab_id"],
            directory,
            [network.LabNetwork(**n) for n in data["networks"]],
            hosts,
            data["pids"],
            data["started_at"],
            data.get("flavour", "nspawn"),  # labs saved before flavours existed were nspawn
        )

    def running(self, machine: str) -> bool:
        """Whether the host's nspawn or unshare process is still the one this lab started."""
        pid = self.pids.get(machine, -1)
        if self.flavour == "plain":
            return plain.is_our_unshare(pid, machine)
        return lab_host.is_our_nspawn(pid, machine)


def up(
    state_dir: Path,
    cache_dir: Path,
    specs: list[HostSpec],
    flavour: str = "auto",
    *,
    description: LabDescription,
) -> Lab:
    """Create the bridge and boot every host; on any failure, remove what was made.

    description gives the image's packages and the services of each group's hosts. flavour
    "auto" boots with nspawn and, when systemd-nspawn is missing or a host does not boot
    under it, tears that lab down and boots the hosts again with the plain flavour.
    """
    if flavour not in FLAVOURS:
        raise LabError(f"unknown lab flavour {flavour!r}: choose one of {', '.join(FLAVOURS)}")
    if not specs:
        raise LabError("no hosts to start: the inventory is empty")
    existing = Lab.load(state_dir / "lab")
    if existing is not None:
        raise LabError(
            f"a lab ({existing.lab_id}) is already up for this site: run 'cityguard lab down' first"
        )
    chosen = ensure_packages_for(flavour)
    image = ensure_image(cache_dir, description.image)
    missing = lab_host.missing_units(image.rootfs, description.units())
    if missing:
        raise LabError(
            f"{description.source}: no package in the lab image provides {', '.join(missing)}: "
            "add its package to image.installed"
        )
    if flavour != "auto" or chosen == "plain":
        return _up_once(state_dir, image.rootfs, specs, chosen, description)
    try:
        return _up_once(state_dir, image.rootfs, specs, "nspawn", description)
    except LabError as error:
        if Lab.load(state_dir / "lab") is not None:
            raise  # the failed lab could not be removed: do not start another over it
        log.warning(
            "lab hosts did not boot under systemd-nspawn (%s): retrying without systemd", error
        )
        return _up_once(state_dir, image.rootfs, specs, "plain", description)


def _up_once(
    state_dir: Path,
    rootfs: Path,
    specs: list[HostSpec],
    flavour: str,
    description: LabDescription,
) -> Lab:
    directory = state_dir / "lab"
    lab_id = secrets.token_hex(3)
    names = list(dict.fromkeys(n for spec in specs for n in _networks_of(spec)))
    networks = network.plan_networks(lab_id, names, network.ipv4_networks_in_use())
    hosts = _with_routes(
        [_host_plan(lab_id, index, spec, networks, flavour) for index, spec in enumerate(specs)],
        networks,
    )
    directory.mkdir(parents=True, exist_ok=True)
    lab = Lab(
        lab_id,
        directory,
        networks,
        hosts,
        started_at=time.time(),
        flavour=flavour,
    )
    try:
        lab.save()
        _start(lab, rootfs, description)
    except BaseException:
        down(state_dir)
        raise
    return lab


def _networks_of(spec: HostSpec) -> tuple[str, ...]:
    return spec.networks or (network.DEFAULT_NETWORK,)


def _host_plan(
    lab_id: str, index: int, spec: HostSpec, networks: list[network.LabNetwork], flavour: str
) -> lab_host.HostPlan:
    """The host's links: one per network it sits on, with its address there. This machine's
    end of the first link of an nspawn host is nspawn's own (vb-<machine>); every other one
    is <machine>v<n>, made by nspawn (extra veths) or by plain.py."""
    machine = f"cg{lab_id}h{index}"
    by_name = {n.name: n for n in networks}
    links = []
    for number, name in enumerate(_networks_of(spec)):
        lab_network = by_name[name]
        outside = (
            f"vb-{machine}"[:15] if number == 0 and flavour == "nspawn" else f"{machine}v{number}"
        )
        links.append(
            lab_host.HostLink(
                name,
                lab_network.bridge,
                f"host{number}",
                outside,
                str(lab_network.host_address(index)),
                lab_network.prefix.prefixlen,
            )
        )
    return lab_host.HostPlan(spec.name, machine, spec.groups, tuple(links))


def _with_routes(
    hosts: list[lab_host.HostPlan], networks: list[network.LabNetwork]
) -> list[lab_host.HostPlan]:
    """Give each single-segment host a route to every other segment its segment's router
    host (one on several segments) has a leg in: the lab routes IPv4 as the site does, and a
    segment with no router (recovery) stays unreachable."""
    prefixes = {n.name: n.ipv4_prefix for n in networks}
    routers = [h for h in hosts if h.routes_ipv4]
    planned = []
    for host in hosts:
        if host.routes_ipv4:
            planned.append(host)
            continue
        link = host.links[0]
        routes = tuple(
            (prefixes[other.network], gateway.ipv4)
            for router in routers
            if (gateway := router.link_on(link.network)) is not None
            for other in router.links
            if other.network != link.network
        )
        planned.append(dataclasses.replace(host, links=(dataclasses.replace(link, routes=routes),)))
    return planned


def _etc_hosts(lab: Lab, viewer: lab_host.HostPlan) -> str:
    """Every host's name at the address the viewer can reach it on: on a network they share,
    else (another segment, reached only through a router, if at all) its management address."""
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    for other in lab.hosts:
        shared = next(
            (link for link in other.links if viewer.link_on(link.network) is not None),
            other.links[0],
        )
        lines.append(f"{shared.ipv4} {other.name}")
    return "\n".join(lines) + "\n"


def _start(lab: Lab, rootfs: Path, description: LabDescription) -> None:
    for lab_network in lab.networks:
        network.create_bridge(lab_network)
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

    def prepare_and_boot(plan_host: lab_host.HostPlan) -> tuple[str, int, str]:
        services = description.services_for(plan_host.groups)
        root = lab_host.prepare(
            plan_host,
            lab.directory,
            rootfs,
            admin_uid,
            public_key,
            _etc_hosts(lab, plan_host),
            services,
        )
        if lab.flavour == "plain":
            pid = plain.boot(plan_host, root, lab.directory, services)
        else:
            pid = lab_host.boot(plan_host, root, lab.directory)
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
    text = sshconfig.config_text(lab.hosts, lab.key_path, known_hosts, lab.socket_dir)
    lab.ssh_config.write_text(text)
    lab.hostvars_path.write_text(json.dumps(lab.hostvars(), indent=2))


def ssh_answers(lab: Lab, name: str, timeout_s: int = 3) -> bool:
    return sshconfig.answers(lab.ssh_config, name, timeout_s)


def _wait_for_ssh(lab: Lab, plan_host: lab_host.HostPlan) -> None:
    deadline = time.monotonic() + SSH_WAIT_S
    while time.monotonic() < deadline:
        if not lab.running(plan_host.machine):
            console = lab_host.host_dir(lab.directory, plan_host.machine) / "console.log"
            last = console.read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(
                f"host {plan_host.name} stopped while booting: {' | '.join(last) or 'no output'}"
            )
        if ssh_answers(lab, plan_host.name, timeout_s=1):
            return
        time.sleep(0.1)
    raise LabError(f"host {plan_host.name} did not answer SSH within {SSH_WAIT_S:.0f} s")


@dataclass
class HostStatus:
    name: str
    machine: str
    networks: str  # network=address of each link
    running: bool
    ssh: bool


def status(state_dir: Path) -> tuple[Lab | None, list[HostStatus]]:
    lab = Lab.load(state_dir / "lab")
    if lab is None:
        return None, []

    def probe(h: lab_host.HostPlan) -> HostStatus:
        running = lab.running(h.machine)
        networks = " ".join(f"{link.network}={link.ipv4}" for link in h.links)
        return HostStatus(
            h.name, h.machine, networks, running, running and ssh_answers(lab, h.name)
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return lab, list(pool.map(probe, lab.hosts))


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
    (state_dir / INVENTORY_OVERLAY).unlink(missing_ok=True)
    shutil.rmtree(directory)
    return lab.lab_id
