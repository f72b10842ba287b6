"""The lab's SSH client side: a config block per host with a pinned host key, and a probe."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from cityguard.lab.host import HostPlan
from cityguard.lab.image import ADMIN_USER


def config_text(
    hosts: Iterable[HostPlan], key_path: Path, known_hosts: Path, socket_dir: Path
) -> str:
    """Keys, verified host keys and connection reuse, so Ansible and testinfra stay fast."""
    blocks = [
        f"Host {h.name}\n"
        f"  HostName {h.ipv4}\n"
        f"  User {ADMIN_USER}\n"
        f"  IdentityFile {key_path}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        f"  HostKeyAlias {h.name}\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        "  ConnectTimeout 5\n"
        "  ControlMaster auto\n"
        f"  ControlPath {socket_dir}/%n\n"
        "  ControlPersist 60s\n"
        for h in hosts
    ]
    return "\n".join(blocks)


def answers(ssh_config: Path, name: str, timeout_s: int = 3) -> bool:
    """A fresh login (no shared control socket), so the answer is about sshd right now."""
    argv = [
        "ssh",
        "-F",
        str(ssh_config),
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
