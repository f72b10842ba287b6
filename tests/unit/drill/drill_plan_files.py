"""The example site's drill plans, edited per test and loaded as cityguard loads them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cityguard.config import content_root
from cityguard.config.inventory import load_inventory
from cityguard.drill.plan import CalendarCheck, CalendarGap, Plan, load_plans

SITE = content_root() / "examples" / "site"
INVENTORY = load_inventory(SITE / "inventory.yml")
#: an off-site repository on a lab bridge address (keys by environment variable name only)
S3 = {
    "endpoint": "http://10.20.1.1:7070",
    "bucket": "city-backups",
    "prefix": "portal",
    "access_key_env": "CG_S3_ACCESS",
    "secret_key_env": "CG_S3_SECRET",
}


def s3_repository(data: dict[str, Any], **s3: Any) -> None:
    """Put a plan's repository in the S3 bucket above (``s3`` adds or changes its keys)."""
    data["repository"] = {"s3": {**S3, **s3}, "password_env": "CITYGUARD_RESTIC_PASSWORD"}


def plan_file(
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None] | None = None,
    name: str = "citizen-portal",
) -> Path:
    """The example plan ``name``, changed by ``edit``, written under ``tmp_path``."""
    data = yaml.safe_load((SITE / "plans" / f"{name}.yml").read_text())
    if edit:
        edit(data)
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load(
    *paths: Path, calendar: CalendarCheck | None = None, gap: CalendarGap | None = None
) -> list[Plan]:
    return load_plans(
        [(p, p.name) for p in paths],
        INVENTORY,
        state_dir=Path("/state"),
        scratch_group="scratch",
        calendar_check=calendar,
        calendar_gap=gap,
    )
