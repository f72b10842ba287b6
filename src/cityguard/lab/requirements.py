"""The Debian packages the lab needs on the control machine, installed when we can."""

from __future__ import annotations

import os
import shutil

from cityguard.lab.command import LabError, run

# command → Debian package that provides it
REQUIRED_COMMANDS = {
    "mmdebstrap": "mmdebstrap",
    "systemd-nspawn": "systemd-container",
    "zstd": "zstd",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
    "tar": "tar",
}


def missing_packages() -> list[str]:
    """Packages whose commands are not on PATH, sorted and without duplicates."""
    return sorted({pkg for cmd, pkg in REQUIRED_COMMANDS.items() if shutil.which(cmd) is None})


def ensure_packages(install: bool = True) -> None:
    """Install what is missing with apt-get (as root), or say exactly which packages are missing."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network bridges, mounts, systemd-nspawn)")
    missing = missing_packages()
    if not missing:
        return
    if not install or shutil.which("apt-get") is None:
        raise LabError("missing Debian packages: " + " ".join(missing))
    env_note = "apt-get install " + " ".join(missing)
    run(
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
        what=f"installing lab requirements ({env_note})",
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )
