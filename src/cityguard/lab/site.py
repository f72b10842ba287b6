"""The lab for a site: one lab host per inventory host, named and grouped as in the inventory.

What the lab image holds, which services run on which hosts and the sample data of the site's
information systems is the site's lab description: lab.yml beside the site file, another file
given with --lab-file, or the built-in default when the site has none.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cityguard.config import Site, cache_dir
from cityguard.lab import sample_data
from cityguard.lab.command import LabError
from cityguard.lab.description import DEFAULT_LAB, LAB_FILE, LabDescription, load_lab_file
from cityguard.lab.lab import HostSpec, Lab, down, up


def host_specs(site: Site, limit: str | None = None) -> list[HostSpec]:
    """The selected inventory hosts with their groups and the segments the site's areas put
    them on (the IPv6 plan does); a host on none goes on the lab's default network."""
    inventory = site.inventory
    networks: dict[str, tuple[str, ...]] = {}
    for section in site.sections.values():
        networks.update(section.networks(site))
    return [
        HostSpec(name, tuple(inventory.groups_of(name)), networks.get(name, ()))
        for name in inventory.select(limit)
    ]


def lab_description(site: Site, lab_file: Path | None = None) -> LabDescription:
    """lab_file when given (it must exist), else lab.yml beside the site file when there is one,
    else the built-in default; raises ConfigError listing every problem of the file."""
    path = lab_file if lab_file is not None else site.root / LAB_FILE
    if lab_file is None and not path.exists():
        return DEFAULT_LAB
    return load_lab_file(
        path,
        _shown(path),
        inventory_groups=site.inventory.groups,
        inventory_hosts=site.inventory.host_names(),
    )


def _shown(path: Path) -> str:
    """Relative to the working directory when the file is below it, as operators type paths."""
    try:
        cwd = Path.cwd()
    except OSError:  # the working directory is gone
        return str(path)
    absolute = cwd / path
    return os.path.relpath(absolute, cwd) if absolute.is_relative_to(cwd) else str(path)


def up_for_site(
    site: Site, limit: str | None = None, flavour: str = "auto", lab_file: Path | None = None
) -> Lab:
    description = lab_description(site, lab_file)
    return up(
        site.state_dir, cache_dir(), host_specs(site, limit), flavour, description=description
    )


def down_for_site(site: Site) -> str | None:
    return down(site.state_dir)


def running_lab(site: Site) -> Lab:
    """The site's lab; LabError when none is up."""
    lab = Lab.load(site.state_dir / "lab")
    if lab is None:
        raise LabError("no lab is up for this site: run 'cityguard lab up' first")
    return lab


def isolated_hosts(site: Site, description: LabDescription) -> list[str]:
    """The inventory hosts in the description's isolated groups, in inventory order."""
    groups = set(description.data.isolated_groups)
    return [
        host for host in site.inventory.host_names() if groups & set(site.inventory.groups_of(host))
    ]


def data_for_site(
    site: Site, lab_file: Path | None = None, say: Callable[[str], None] = lambda _: None
) -> LabDescription:
    """Load the lab description's sample data onto the site's running lab and isolate its
    restore targets; returns the description (its data section says what was done)."""
    lab = running_lab(site)
    description = lab_description(site, lab_file)
    sample_data.load(lab, description.data, isolated_hosts(site, description), say)
    return description
