"""Which ``--tags`` a hardening run accepts: the role tags of the playbook and control ids.

Ansible runs nothing for a tag no task carries and still reports success, so ``--tags sshh``
would end with exit 0 having hardened nothing. The role tags are read from the playbook itself
(``roles:`` entries of playbooks/harden.yml), so a new role needs no change here.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.config.yaml_lines import load_yaml_file


def role_tags(playbook: Path) -> list[str]:
    """The tags of the roles the playbook runs, in playbook order."""
    doc = load_yaml_file(playbook)
    tags: list[str] = []
    plays: list[Any] = doc.data if isinstance(doc.data, list) else []
    for play in plays:
        roles = play.get("roles", []) if isinstance(play, dict) else []
        for role in roles:
            entry_tags = role.get("tags", []) if isinstance(role, dict) else []
            for tag in [entry_tags] if isinstance(entry_tags, str) else entry_tags:
                if isinstance(tag, str) and tag not in tags:
                    tags.append(tag)
    return tags


def check_tags(tags: list[str] | None, roles: list[str], controls: Collection[str]) -> None:
    """Refuse an empty ``--tags`` and every tag that is neither a role tag nor a control id."""
    if tags is None:
        return
    if not tags:
        raise ConfigError([ConfigProblem("", None, "--tags", "selects no tag")])
    unknown = [tag for tag in tags if tag not in roles and tag not in controls]
    if unknown:
        known = ", ".join(roles)
        raise ConfigError(
            [
                ConfigProblem(
                    "", None, "--tags", f"unknown tag '{tag}' (role tags: {known}; or a control id)"
                )
                for tag in unknown
            ]
        )
