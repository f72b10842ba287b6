"""The lab's Debian 12 root filesystem: built once with mmdebstrap, cached, unpacked once.

What goes into the image beyond the base every lab host needs is the site's choice, read from
its lab description (description.py). The cache key is a hash of everything that shapes the
image (suite, mirror, package lists, hooks), so adding a package a role needs rebuilds it
automatically and an unchanged recipe is reused. docs/lab.md has the sizes and timings.
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
# 2: extended attributes (file capabilities) kept when unpacking
UNPACK_VERSION = 2

# What every lab host needs whatever the site: systemd to boot under nspawn, tini to be PID 1
# without it (plain.py), sshd and sudo for the admin user, python3 and python3-apt for Ansible,
# and the tools to look at a host's network and processes. Hosts have no route to a mirror
# (docs/lab.md), so anything else a site needs is listed in its lab.yml and baked in.
BASE_PACKAGES = (
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
)


@dataclass(frozen=True)
class ImageRecipe:
    """What the image holds.

    installed: packages installed (the base packages first); downloaded: packages whose .deb
    files (with their recommends) are only downloaded into APT's cache, the way a host looks
    after `apt-get install --download-only`, so installing them stays real work for the tool
    under test; masked: units masked because they cannot run in a container.
    """

    installed: tuple[str, ...] = BASE_PACKAGES
    downloaded: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()

    def hooks(self) -> tuple[str, ...]:
        """mmdebstrap customize hooks, run in order in the finished root ($1)."""
        download = (
            # with their recommends, as apt on a host installs them (mmdebstrap leaves them out)
            'chroot "$1" apt-get install --download-only --yes --quiet '
            f"-o APT::Install-Recommends=true {' '.join(self.downloaded)}",
        )
        return (
            'chroot "$1" apt-get clean',
            *(download if self.downloaded else ()),
            # host keys are generated per host at lab up, never shared through the image
            'rm -f "$1"/etc/ssh/ssh_host_*',
            f'chroot "$1" useradd --create-home --shell /bin/bash --groups sudo {ADMIN_USER}',
            f'echo "{ADMIN_USER} ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/{ADMIN_USER}"',
            f'chmod 0440 "$1/etc/sudoers.d/{ADMIN_USER}"',
            ': > "$1/etc/resolv.conf"',
            *(f'chroot "$1" systemctl mask {unit}' for unit in self.masked),
            'chroot "$1" systemctl enable systemd-networkd.service',
        )


@dataclass(frozen=True)
class Image:
    key: str
    archive: Path
    rootfs: Path


def mirror() -> str:
    return os.environ.get("CITYGUARD_DEBIAN_MIRROR", DEFAULT_MIRROR)


def image_key(recipe: ImageRecipe) -> str:
    """A short hash of everything that determines the image's content."""
    shape = {
        "suite": SUITE,
        "mirror": mirror(),
        "packages": sorted(recipe.installed),
        "downloaded_only": sorted(recipe.downloaded),
        "hooks": recipe.hooks(),
        # how the archive is unpacked: an image unpacked without file capabilities is not reused
        "unpack": UNPACK_VERSION,
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
    return digest[:12]


def image_for(cache_dir: Path, recipe: ImageRecipe) -> Image:
    key = image_key(recipe)
    base = cache_dir / "images"
    return Image(key, base / f"debian12-{key}.tar.zst", base / f"debian12-{key}" / "rootfs")


def build(image: Image, recipe: ImageRecipe) -> None:
    """Build the image archive with mmdebstrap; written under a temporary name, then renamed."""
    image.archive.parent.mkdir(parents=True, exist_ok=True)
    # mmdebstrap picks the compression from the name, so the partial name keeps the suffix
    partial = image.archive.with_name(f"debian12-{image.key}.partial.tar.zst")
    hooks = [f"--customize-hook={hook}" for hook in recipe.hooks()]
    try:
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--mode=root",
                "--variant=apt",
                "--include=" + ",".join(recipe.installed),
                # keep the package lists and the downloaded .debs (see ImageRecipe.downloaded)
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
            # file capabilities (ping's cap_net_raw) live in extended attributes
            "--xattrs",
            "--xattrs-include=*",
            "--file",
            str(image.archive),
            "--directory",
            str(target),
        ],
        what="unpacking the lab image",
    )
    (target.parent / "complete").touch()


def ensure_image(cache_dir: Path, recipe: ImageRecipe) -> Image:
    """Return the unpacked image for the recipe, building and unpacking only if needed."""
    image = image_for(cache_dir, recipe)
    if (image.rootfs.parent / "complete").exists():
        return image
    if not image.archive.exists():
        build(image, recipe)
    unpack(image)
    if not (image.rootfs / "usr" / "sbin" / "sshd").exists():
        raise LabError(f"lab image {image.archive} has no sshd: remove it and retry")
    return image
