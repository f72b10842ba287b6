"""One lab host without systemd: the fallback flavour, for machines where nspawn cannot boot.

The host shares everything before boot with the nspawn flavour (host.prepare: overlay root,
identity, keys). It then runs in its own network namespace, named like the machine and joined
to the bridge of each of its networks by a veth pair (``<machine>v<n>`` here, ``host<n>``
inside), and in new mount,
UTS, IPC and PID namespaces made by ``unshare``. There, /proc/sys is read-only except
/proc/sys/net (kernel.*, fs.*, vm.* are global: docs/lab.md), sysfs is read-only, /dev is a
small tmpfs with a handful of device nodes and a private devpts, /run and /tmp are tmpfs, the
root is pivoted onto the overlay so the machine's own mounts are out of sight, and sys_module,
sys_time, sys_rawio and sys_boot are dropped from the bounding set. tini is PID 1; its child is
a shell script that starts sshd and, in parallel (so SSH may answer before they are ready, as
under systemd), the services the site's lab description starts for the host's groups; it then
waits, and stops them cleanly on SIGTERM.

This is a lab fixture, not a security boundary: root in a host keeps CAP_SYS_ADMIN (as under
nspawn) and could remount what is read-only.

What does not work here, because systemd is absent (use the nspawn flavour for these):
- ``ansible.builtin.systemd`` / ``systemd_service`` and anything calling ``systemctl``, such as
  handlers that reload or restart units through it; ``ansible.builtin.service`` works through
  the init.d scripts (``service ssh reload``);
- units, timers, drop-ins and systemd-networkd config are written but never take effect (the
  addresses are set from outside; SLAAC is switched on with the ``accept_ra`` sysctl instead
  of a networkd drop-in); nftables rules need an explicit ``nft -f`` handler;
- only sshd and the services the lab description starts for the host's groups run: no
  journald, rsyslog, cron or chrony.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from cityguard.lab.command import LabError, run
from cityguard.lab.description import HostServices
from cityguard.lab.host import HostPlan, host_dir

IFNAMSIZ = 15  # longest Linux interface name
# the overlay root is an argument of the unshare process, so its cmdline names the machine
ROOT_ARG = re.compile(r"/hosts/(cg[0-9a-f]{6}h\d+)/root$")
OUTSIDE_VETH = re.compile(r"cg[0-9a-f]{6}h\d+v\d+")  # this machine's end: <machine>v<n>
DROPPED_CAPS = ("sys_module", "sys_time", "sys_rawio", "sys_boot")
ACCEPT_RA = "/proc/sys/net/ipv6/conf/{}/accept_ra"  # per network namespace
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Runs as PID 1 of the new PID namespace, with this machine's binaries until pivot_root, then
# the image's. $1 root, $2 hostname, $3 init script, $4 setpriv's --bounding-set value.
# /proc/sys and the /proc files that reach the real kernel are read-only, except /proc/sys/net.
SETUP_SCRIPT = """set -eu
root=$1
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
echo "$2" > "$root/proc/sys/kernel/hostname"
read_only="sys sysrq-trigger irq bus fs acpi"
for p in $read_only; do
  if [ -e "$root/proc/$p" ]; then mount --bind "$root/proc/$p" "$root/proc/$p"; fi
done
mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
for p in $read_only; do
  if [ -e "$root/proc/$p" ]; then mount -o remount,bind,ro "$root/proc/$p"; fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=512k tmpfs "$root/dev"
cd "$root/dev"
mknod -m 0666 null c 1 3
mknod -m 0666 zero c 1 5
mknod -m 0666 full c 1 7
mknod -m 0666 random c 1 8
mknod -m 0666 urandom c 1 9
mknod -m 0666 tty c 5 0
ln -s /proc/self/fd fd
ln -s /proc/self/fd/0 stdin
ln -s /proc/self/fd/1 stdout
ln -s /proc/self/fd/2 stderr
mkdir -m 0755 pts
mkdir -m 1777 shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts pts
ln -s pts/ptmx ptmx
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs shm
mount -t tmpfs -o nosuid,nodev,mode=0755,size=64m tmpfs "$root/run"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/tmp"
# what systemd writes in containers; systemd-detect-virt and the roles read it
mkdir -m 0755 "$root/run/systemd"
echo "$container" > "$root/run/systemd/container"
cd "$root"
pivot_root . mnt
cd /
umount -l /mnt
exec chroot / setpriv --bounding-set "$4" -- /usr/bin/tini -- /bin/sh -c "$3" cityguard-init
"""


def init_script(services: HostServices) -> str:
    """Trap first, so a stop during start-up still stops cleanly; each group's services start
    in parallel with sshd, as under systemd (a database cluster can take seconds to start)."""
    starts = "".join("{\n" + "\n".join(block) + "\n} &\n" for block in services.start_blocks)
    stops = "".join(f"  {command} || true\n" for command in services.stop_commands)
    return (
        "stop() {\n"
        "  /etc/init.d/ssh stop || true\n"
        f"{stops}"
        "  exit 0\n"
        "}\n"
        "trap stop TERM INT\n"
        f"{starts}"
        "/etc/init.d/ssh start\n"
        "while :; do sleep 3600 & wait $!; done\n"
    )


def veth_name(machine: str, index: int) -> str:
    return f"{machine}v{index}"


def _create_network(host: HostPlan) -> None:
    ns = host.machine
    run(["ip", "netns", "add", ns], what=f"creating network namespace {ns}")
    run(["ip", "-n", ns, "link", "set", "lo", "up"], what=f"bringing lo up in {ns}")
    for link in host.links:
        if len(link.outside) > IFNAMSIZ:
            raise LabError(f"interface name {link.outside} is longer than {IFNAMSIZ} characters")
        inside, address = link.interface, f"{link.ipv4}/{link.prefix_ipv4}"
        steps = [
            (
                [
                    *("ip", "link", "add", link.outside, "type", "veth", "peer", "name", inside),
                    *("netns", ns),
                ],
                f"creating veth {link.outside}",
            ),
            (
                ["ip", "link", "set", link.outside, "master", link.bridge, "up"],
                f"attaching {link.outside} to {link.bridge}",
            ),
            # like systemd-networkd's IPv6AcceptRA=no on nspawn hosts: SLAAC is the rollout's job
            (
                ["ip", "netns", "exec", ns, "sh", "-c", "echo 0 > " + ACCEPT_RA.format(inside)],
                f"setting accept_ra of {inside} in {ns}",
            ),
            (
                ["ip", "-n", ns, "addr", "add", address, "dev", inside],
                f"adding {link.ipv4} to {host.name}",
            ),
            (["ip", "-n", ns, "link", "set", inside, "up"], f"bringing {inside} of {host.name} up"),
        ]
        steps += [
            (
                ["ip", "-n", ns, "route", "add", destination, "via", gateway],
                f"routing {destination} via {gateway} on {host.name}",
            )
            for destination, gateway in link.routes
        ]
        for argv, what in steps:
            run(argv, what=what)
    if host.routes_ipv4:
        run(
            ["ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
            what=f"turning IPv4 forwarding on in {ns}",
        )


def boot(host: HostPlan, root: Path, lab_dir: Path, services: HostServices) -> int:
    """Start the host's namespaces and init; returns the PID of the unshare process."""
    _create_network(host)
    bounding = ",".join(f"-{cap}" for cap in DROPPED_CAPS)
    console = (host_dir(lab_dir, host.machine) / "console.log").open("wb")
    with console:
        process = subprocess.Popen(
            # nsenter execs unshare in the host's network namespace, so the PID is unshare's
            [
                "nsenter",
                f"--net=/run/netns/{host.machine}",
                "unshare",
                "--mount",
                "--uts",
                "--ipc",
                "--pid",
                "--fork",
                "--kill-child",
                "--",
                "/bin/sh",
                "-c",
                SETUP_SCRIPT,
                "cityguard-setup",
                str(root),
                host.name,
                init_script(services),
                bounding,
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": HOST_PATH, "container": "cityguard-plain"},
        )
    return process.pid


def machine_of(argv: list[str]) -> str | None:
    """The machine an unshare command line belongs to, or None when it is not a plain host.

    Until nsenter has exec'd unshare, the same PID still shows nsenter's command line.
    """
    if not argv or os.path.basename(argv[0]) not in ("nsenter", "unshare"):
        return None
    for arg in argv[1:]:
        match = ROOT_ARG.search(arg)
        if match:
            return match.group(1)
    return None


def is_our_unshare(pid: int, machine: str) -> bool:
    """True only if pid is still the unshare we started for machine."""
    return machine_of(_argv(pid)) == machine


def _argv(pid: int) -> list[str]:
    """A process's argv; empty when it is gone or a zombie.

    While a process execs (nsenter becoming unshare, after Popen has returned) its cmdline
    reads empty for a moment: wait that out rather than take the host for stopped.
    """
    for _ in range(100):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            if raw:
                return raw.decode(errors="replace").split("\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return []
        if state in ("Z", "X"):
            return []
        time.sleep(0.01)
    return []


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        # we start unshare as a session leader; anything else only gets the signal itself
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def stop(pid: int, machine: str, timeout_s: float = 10.0) -> None:
    """SIGTERM (init stops its services), SIGKILL if stuck, then remove the host's network."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if not is_our_unshare(pid, machine):
            break
        _signal_group(pid, signum)
        deadline = time.monotonic() + timeout_s
        while is_our_unshare(pid, machine) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.02)
    _reap(pid)
    if is_our_unshare(pid, machine):
        raise LabError(f"host {machine} (pid {pid}) did not stop, even on SIGKILL")
    remove_network(machine)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def remove_network(machine: str) -> None:
    """Delete the host's veth pairs (synchronously, both ends) and its network namespace."""
    for name in sorted(os.listdir("/sys/class/net")):
        if OUTSIDE_VETH.fullmatch(name) and name.rpartition("v")[0] == machine:
            run(["ip", "link", "delete", name], what=f"deleting veth {name}")
    if Path("/run/netns", machine).exists():
        run(["ip", "netns", "delete", machine], what=f"deleting network namespace {machine}")
