"""The site file's ``ipv6`` section: where the IPv6 plan is, and how a rollout proceeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.config.scope import SectionScope
from cityguard.config.site import Site, SiteSection
from cityguard.config.yaml_lines import load_yaml_file
from cityguard.ipv6.hostvars import plan_hostvars, unplanned
from cityguard.ipv6.plan import AddressPlan, PlanError, parse_plan


class Ipv6Settings(SiteSection):
    """The IPv6 addressing plan and its rollout (`cityguard ipv6`)."""

    plan: str = Field(
        description="The IPv6 addressing plan file, relative to the site file (site prefix, "
        "locations, segments, servers and routers; see src/cityguard/ipv6/plan.py)."
    )
    canary: str | None = Field(
        default=None,
        description="Host rolled out first, alone, before the batches (default: the first "
        "server of the plan in name order).",
    )
    batch_size: int = Field(
        default=2, ge=1, le=1000, description="Hosts per rollout batch after the canary."
    )
    revert_after_s: int = Field(
        default=180,
        ge=30,
        le=3600,
        description="Seconds after which a host puts its old network configuration back by "
        "itself unless the rollout confirmed the change (the lockout guard).",
    )

    def check(self, scope: SectionScope) -> list[ConfigProblem]:
        problems = scope.referenced_file(("plan",), self.plan)
        inventory = scope.inventory
        if (
            self.canary is not None
            and inventory is not None
            and self.canary not in inventory.host_names()
        ):
            problems.append(
                scope.problem(("canary",), f"host '{self.canary}' is not in the inventory")
            )
        return problems

    def plan_file(self, site_path: Path) -> tuple[Path, str]:
        """(path, how problems name it): relative to the site file as the operator typed it."""
        return site_path.parent / self.plan, str(site_path.parent / self.plan)

    def read_plan(self, site: Site) -> AddressPlan:
        """The plan file, parsed against the inventory; ConfigError (exit 2) with every problem
        of the plan, its warnings listed after the errors."""
        path, display = self.plan_file(site.path)
        doc = load_yaml_file(path, display)
        try:
            return parse_plan(doc, site.inventory.host_names())
        except PlanError as error:
            raise ConfigError([*error.problems, *error.warnings]) from None

    def hostvars(self, site: Site) -> dict[str, dict[str, Any]]:
        """``cityguard_ipv6`` for every inventory host: its planned state, or, for a host the
        plan leaves out, why it has none (its IPv6 checks then fail saying so)."""
        plan = self.read_plan(site)
        planned = plan_hostvars(plan)
        return {
            host: planned.get(host) or unplanned(plan, host) for host in site.inventory.host_names()
        }

    def networks(self, site: Site) -> dict[str, tuple[str, ...]]:
        """Each planned host's segments: a server's one, a router's legs in plan order."""
        plan = self.read_plan(site)
        return {host: tuple(a.segment for a in plan.of_host(host)) for host in plan.hosts}
