"""The Debian packages the lab needs on the control machine, installed when we can."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Collection

from cityguard.lab.command import LabError, run

# command → Debian package that provides it
REQUIRED_COMMANDS = {
    "mmdebstrap": "mmdebstrap",
    "systemd-nspawn": "systemd-container",
    "unshare": "util-linux",  # hosts without systemd (plain.py)
    "nsenter": "util-linux",
    "zstd": "zstd",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
    "tar": "tar",
}


log = logging.getLogger(__name__)


def missing_packages(without: Collection[str] = ()) -> list[str]:
    """Packages whose commands are not on PATH, sorted and without duplicates."""
    return sorted(
        {
            pkg
            for cmd, pkg in REQUIRED_COMMANDS.items()
            if cmd not in without and shutil.which(cmd) is None
        }
    )


def ensure_packages(install: bool = True, without: Collection[str] = ()) -> None:
    """Install what is missing with apt-get (as root), or say exactly which packages are missing."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network bridges, mounts, systemd-nspawn)")
    missing = missing_packages(without)
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


def ensure_packages_for(flavour: str) -> str:
    """Ensure the packages a lab flavour needs; returns the flavour to boot hosts with first.

    "plain" hosts need no systemd-nspawn; "auto" installs it when it can and otherwise goes on
    without it (raising if anything else is missing).
    """
    if flavour == "plain":
        ensure_packages(without=("systemd-nspawn",))
        return "plain"
    if flavour == "nspawn":
        ensure_packages()
        return "nspawn"
    try:
        ensure_packages()
        return "nspawn"
    except LabError as error:
        ensure_packages(without=("systemd-nspawn",))
        if shutil.which("systemd-nspawn") is not None:
            raise
        log.warning(
            "systemd-nspawn is not available (%s): booting lab hosts without systemd", error
        )
        return "plain"
