"""Connection details kept beside a site's inventory, not in it.

A site's inventory names hosts and groups and stays reviewable; how to reach each host (address,
user, ssh options) may be written by a tool such as the lab into the state directory as an
overlay. Loading a site merges any overlay it finds, without knowing what wrote it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cityguard.config.errors import ConfigError, ConfigProblem

INVENTORY_OVERLAY = "inventory-overlay.json"


def read_inventory_overlay(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Per-host variables from the state directory's overlay; empty when there is none."""
    path = state_dir / INVENTORY_OVERLAY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [ConfigProblem(str(path), None, "", f"unreadable overlay: {exc}")]
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(
            [ConfigProblem(str(path), None, "", "overlay must map hosts to variables")]
        )
    return data


def write_inventory_overlay(state_dir: Path, hostvars: dict[str, dict[str, Any]]) -> None:
    """Write the overlay atomically (0600: it names keys and addresses)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".overlay.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(hostvars, handle, indent=2, sort_keys=True)
        os.replace(tmp, state_dir / INVENTORY_OVERLAY)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _problem(path: Path, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(str(path), None, "", message)])
