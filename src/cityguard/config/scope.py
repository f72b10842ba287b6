"""What an area section's own rules see: the site file, where it is, the content and inventory.

Kept apart from the models (``site``) and the base rules (``crossfile``) so both can use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cityguard.config.errors import ConfigProblem, KeyPath

if TYPE_CHECKING:
    from cityguard.config.inventory import Inventory
    from cityguard.config.yaml_lines import YamlDocument


def shown_path(site_path: Path, relative: str) -> str:
    """How a file referenced from the site file is named in problems.

    Joined to the site file's path as the operator typed it, so a relative invocation yields
    relative names they recognise (``examples/site/inventory.yml``), not a long absolute path.
    """
    return str(site_path.parent / relative)


def check_referenced_file(
    doc: YamlDocument, key: KeyPath, site_path: Path, relative: str
) -> list[ConfigProblem]:
    """A path the site file references must name an existing regular file."""
    target = site_path.parent / relative
    if target.is_file():
        return []
    reason = "is not a file" if target.exists() else "file not found"
    return [doc.problem(key, f"{reason}: {shown_path(site_path, relative)}")]


class SectionScope:
    """What an area section's ``check`` may look at, and how it reports a located problem."""

    def __init__(
        self,
        doc: YamlDocument,
        key: str,
        site_path: Path,
        content_dir: Path,
        inventory: Inventory | None,
    ) -> None:
        self.doc = doc
        self.key = key
        self.site_path = site_path
        self.content_dir = content_dir
        self.inventory = inventory  # None when the inventory itself has problems

    def problem(self, path: KeyPath, message: str) -> ConfigProblem:
        """A problem at ``path`` inside the section, with the file and line of that key."""
        return self.doc.problem((self.key, *path), message)

    def referenced_file(self, path: KeyPath, relative: str) -> list[ConfigProblem]:
        """The file named at ``path`` (relative to the site file) must exist."""
        return check_referenced_file(self.doc, (self.key, *path), self.site_path, relative)
