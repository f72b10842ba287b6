"""The site's IPv6 plan, loaded for a command: its settings, then its file, checked in full."""

from __future__ import annotations

from dataclasses import dataclass

from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.config.site import Site
from cityguard.ipv6.plan import AddressPlan
from cityguard.ipv6.settings import Ipv6Settings


@dataclass(frozen=True)
class SitePlan:
    settings: Ipv6Settings
    plan: AddressPlan


def load_site_plan(site: Site) -> SitePlan:
    """The settings and resolved plan; ConfigError (exit 2) with every problem of the plan,
    its warnings listed after the errors."""
    settings = site.section("ipv6", Ipv6Settings)
    if settings is None:
        where = site.display or str(site.path)
        raise ConfigError(
            [
                ConfigProblem(
                    where, None, "ipv6", "the site file has no ipv6 section naming its plan"
                )
            ]
        )
    return SitePlan(settings, settings.read_plan(site))
