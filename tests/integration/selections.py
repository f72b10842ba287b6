"""Narrow a check run to what the test is about.

The example site's baseline also selects the IPv6 controls (CG-IPV6-*), which only `cityguard
ipv6 rollout` makes pass; a lab that was only hardened fails them, honestly. Tests of hardening
pass `--controls` with the site's selected controls except those, and the IPv6 tests
(test_ipv6_rollout.py) prove the IPv6 ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cityguard.config import content_root
from cityguard.workspace import open_workspace

IPV6_CONTROLS_FILE = content_root() / "policies" / "controls" / "ipv6.yml"


def ipv6_control_ids() -> list[str]:
    data = yaml.safe_load(IPV6_CONTROLS_FILE.read_text())
    return [str(c["id"]) for c in data["controls"]]


def hardening_controls(site: Path) -> list[str]:
    """The site's selected host controls that harden enforces: all but the IPv6 area's."""
    ipv6 = set(ipv6_control_ids())
    return [c for c in open_workspace(site).selection.control_ids if c not in ipv6]
