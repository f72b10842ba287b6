"""A small real site in a temporary directory, and the cityguard command line run on it."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import cli_process

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
    """The real command line (cli_process), with HOME beside the state directory: some of these
    tests make the state directory a file, which HOME cannot be."""
    return cli_process.cityguard(*args, state=state, home=state.parent, cwd=cwd)
