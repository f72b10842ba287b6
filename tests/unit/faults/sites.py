"""A small real site in a temporary directory, and the cityguard command line run on it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SITE = """\
version: 1
site:
  name: faults
  title: Fault tests
inventory: inventory.yml
baseline: municipal-server
parameters: {}
waivers: []
"""

INVENTORY = """\
all:
  children:
    web:
      hosts:
        web1: {}
    db:
      hosts:
        db1: {}
"""


def make_site(root: Path, site: str = SITE, inventory: str = INVENTORY) -> Path:
    """Write site.yml and inventory.yml under ``root``; returns the site file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "inventory.yml").write_text(textwrap.dedent(inventory))
    path = root / "site.yml"
    path.write_text(textwrap.dedent(site))
    return path


def cityguard(*args: str, state: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a clean environment with its own state directory."""
    return subprocess.run(
        [sys.executable, "-m", "cityguard.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CITYGUARD_STATE": str(state), "HOME": str(state.parent)},
        check=False,
        timeout=120,
        cwd=cwd,
    )
