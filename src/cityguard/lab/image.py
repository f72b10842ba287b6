"""The lab's Debian 12 root filesystem: built once with mmdebstrap, cached, unpacked once.

The cache key is a hash of everything that shapes the image (suite, mirror, packages, hooks),
so adding a package a role needs rebuilds it automatically and an unchanged list is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cityguard.lab.command import LabError, run

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ADMIN_USER = "cgadmin"

# Installed in the image (hosts have no route to a mirror, LAB.md). Grouped by what needs them.
PACKAGES = (
    # booting and reaching the host
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "sudo",
    "python3",
    "python3-apt",
    "iproute2",
    "procps",
    "iputils-ping",
    "kmod",
    "tini",
    # what a fresh Debian 12 server already has: firewall tooling, AppArmor, cron, logrotate,
    # and systemd-timesyncd as its time daemon
    "nftables",
    "apparmor",
    "systemd-timesyncd",
    "cron",
    "logrotate",
    "ca-certificates",
    # the Lynis benchmark's auditor
    "lynis",
    # IPv6 rollout
    "radvd",
    "ndisc6",
    # disaster-recovery drills
    "postgresql",
    "restic",
)

# What harden installs on a fresh server. Hosts have no route to a mirror (LAB.md), so the image
# holds these the way a host looks after `apt-get install --download-only`: package lists and
# the verified .deb files are there, nothing is installed, and harden's installs are real work.
DOWNLOADED_ONLY = (
    "rsyslog",
    "auditd",
    "chrony",
    "unattended-upgrades",
    "libpam-pwquality",
    "cracklib-runtime",
    "apparmor-utils",
)

CUSTOMIZE_HOOKS = (
    'chroot "$1" apt-get clean',
    # with their recommends, as apt on the host installs them (mmdebstrap's build leaves them out)
    'chroot "$1" apt-get install --download-only --yes --quiet -o APT::Install-Recommends=true '
    f"{' '.join(DOWNLOADED_ONLY)}",
    # host keys are generated per host at lab up, never shared through the image
    'rm -f "$1"/etc/ssh/ssh_host_*',
    f'chroot "$1" useradd --create-home --shell /bin/bash --groups sudo {ADMIN_USER}',
    f'echo "{ADMIN_USER} ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/{ADMIN_USER}"',
    f'chmod 0440 "$1/etc/sudoers.d/{ADMIN_USER}"',
    ': > "$1/etc/resolv.conf"',
    # auditd cannot run outside the initial PID namespace (LAB.md)
    'chroot "$1" systemctl mask auditd.service',
    'chroot "$1" systemctl enable systemd-networkd.service',
)


@dataclass(frozen=True)
class Image:
    key: str
    archive: Path
    rootfs: Path


def mirror() -> str:
    return os.environ.get("CITYGUARD_DEBIAN_MIRROR", DEFAULT_MIRROR)


def image_key() -> str:
    """A short hash of everything that determines the image's content."""
    recipe = {
        "suite": SUITE,
        "mirror": mirror(),
        "packages": sorted(PACKAGES),
        "downloaded_only": sorted(DOWNLOADED_ONLY),
        "hooks": CUSTOMIZE_HOOKS,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return digest[:12]


def image_for(cache_dir: Path) -> Image:
    key = image_key()
    base = cache_dir / "images"
    return Image(key, base / f"debian12-{key}.tar.zst", base / f"debian12-{key}" / "rootfs")


def build(image: Image) -> None:
    """Build the image archive with mmdebstrap; written under a temporary name, then renamed."""
    image.archive.parent.mkdir(parents=True, exist_ok=True)
    # mmdebstrap picks the compression from the name, so the partial name keeps the suffix
    partial = image.archive.with_name(f"debian12-{image.key}.partial.tar.zst")
    hooks = [f"--customize-hook={hook}" for hook in CUSTOMIZE_HOOKS]
    try:
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--mode=root",
                "--variant=apt",
                "--include=" + ",".join(PACKAGES),
                # keep the package lists and the downloaded .debs (see DOWNLOADED_ONLY)
                "--skip=cleanup/apt",
                *hooks,
                SUITE,
                str(partial),
                mirror(),
            ],
            what="building the lab image with mmdebstrap",
        )
        partial.replace(image.archive)
    finally:
        partial.unlink(missing_ok=True)


def unpack(image: Image) -> None:
    """Unpack the archive into the shared read-only lower layer; marked complete when done."""
    target = image.rootfs
    if target.parent.exists():
        shutil.rmtree(target.parent)
    target.mkdir(parents=True)
    run(
        [
            "tar",
            "--zstd",
            "--extract",
            "--numeric-owner",
            "--file",
            str(image.archive),
            "--directory",
            str(target),
        ],
        what="unpacking the lab image",
    )
    (target.parent / "complete").touch()


def ensure_image(cache_dir: Path) -> Image:
    """Return the unpacked image for the current recipe, building and unpacking only if needed."""
    image = image_for(cache_dir)
    if (image.rootfs.parent / "complete").exists():
        return image
    if not image.archive.exists():
        build(image)
    unpack(image)
    if not (image.rootfs / "usr" / "sbin" / "sshd").exists():
        raise LabError(f"lab image {image.archive} has no sshd: remove it and retry")
    return image
