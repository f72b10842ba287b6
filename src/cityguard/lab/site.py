"""The lab for a site: one lab host per inventory host, named and grouped as in the inventory."""

from __future__ import annotations

from cityguard.config import Site, cache_dir
from cityguard.lab.lab import HostSpec, Lab, down, up


def host_specs(site: Site, limit: str | None = None) -> list[HostSpec]:
    inventory = site.inventory
    return [HostSpec(name, tuple(inventory.groups_of(name))) for name in inventory.select(limit)]


def up_for_site(site: Site, limit: str | None = None, flavour: str = "auto") -> Lab:
    return up(site.state_dir, cache_dir(), host_specs(site, limit), flavour)


def down_for_site(site: Site) -> str | None:
    return down(site.state_dir)
