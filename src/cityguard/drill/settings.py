"""The site file's ``drill`` section: which plans the site has and how drills reach them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from cityguard.config.errors import ConfigProblem
from cityguard.config.scope import SectionScope
from cityguard.config.site import SiteSection


class DrillSettings(SiteSection):
    """Disaster-recovery plans and drills (dr/README.md)."""

    plans: list[str] = Field(
        min_length=1,
        description="Plan files, one per information system, relative to the site file "
        "(schema: dr/plan-schema.md).",
    )
    scratch_group: str = Field(
        default="scratch",
        description="Inventory group of the throw-away hosts a drill may restore onto.",
    )
    restic: str | None = Field(
        default=None,
        description="restic binary (default: the pinned build under the cache directory, "
        "made by tools/components/restic.sh).",
    )
    metrics_textfile: str | None = Field(
        default=None,
        description="Prometheus textfile collector file written after each backup and drill.",
    )
    webhook_url: str | None = Field(
        default=None, description="URL receiving a JSON POST after each drill."
    )

    @field_validator("plans")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a plan file is listed twice")
        return value

    def check(self, scope: SectionScope) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        for index, relative in enumerate(self.plans):
            problems += scope.referenced_file(("plans", index), relative)
        inventory = scope.inventory
        if inventory is not None and self.scratch_group not in inventory.groups:
            problems.append(
                scope.problem(
                    ("scratch_group",), f"no group '{self.scratch_group}' in the inventory"
                )
            )
        return problems

    def plan_files(self, site_path: Path) -> list[tuple[Path, str]]:
        """(path, name for messages) of every plan, relative to the site file as typed."""
        return [(site_path.parent / p, str(site_path.parent / p)) for p in self.plans]
