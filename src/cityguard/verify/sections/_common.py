"""Small pieces the area modules of this package share: shell fragments that read files or
report a missing tool as `@@error`, parsers for the shapes those fragments print, and the
reading of a controls catalog. Kept apart so each area module holds only its own facts.

It registers no section (the package imports it like any other module, which is harmless).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

# ------------------------------------------------------------------ shell fragments

_NEEDS = (
    "command -v {tool} >/dev/null || {{ echo '@@error'; echo '{tool} not found{why}'; exit 0; }}; "
)


def needs(tool: str, why: str = "") -> str:
    """A snippet prefix: when the tool is absent, print `@@error` and `<tool> not found (<why>)`
    and end the snippet there."""
    return _NEEDS.format(tool=tool, why=f" ({why})" if why else "")


def or_error(command: str) -> str:
    """Run `command`; print its output, or `@@error` and the first lines of why it failed."""
    return (
        f"out=$({command} 2>&1) && printf '%s\\n' \"$out\" "
        "|| { echo '@@error'; printf '%s\\n' \"$out\" | head -3; }"
    )


def grep_files(*globs: str) -> str:
    """`path:line` for every line of the files (missing ones silently skipped)."""
    return f"grep -H '' {' '.join(globs)} 2>/dev/null; true"


# ------------------------------------------------------------------ parsing helpers


def split_grep(lines: Iterable[str], separator: str = ":") -> dict[str, list[str]]:
    """`path:line` lines (from `grep_files`) -> path -> its lines, in order; any other
    `key<separator>value` listing groups the same way."""
    files: dict[str, list[str]] = {}
    for line in lines:
        path, sep, text = line.partition(separator)
        if sep:
            files.setdefault(path, []).append(text)
    return files


def uncommented(text: str, comment: str = "#") -> str:
    """A config line without its comment and surrounding blanks."""
    return text.split(comment, 1)[0].strip()


_FILE_HEADER = re.compile(r"^# (/\S+)$")


def systemd_settings(lines: Iterable[str], section: str) -> dict[str, tuple[str, str]]:
    """Key -> (value, file) of one [section], from `systemd-analyze cat-config` output, which
    prints each file after a `# /path` line in the order systemd reads them (last one wins)."""
    settings: dict[str, tuple[str, str]] = {}
    current_file, current_section = "", ""
    for raw in lines:
        line = raw.strip()
        header = _FILE_HEADER.match(line)
        if header:
            current_file, current_section = header.group(1), ""
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current_section = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if eq and current_section == section:
            settings[key.strip()] = (value.strip(), current_file)
    return settings


# ------------------------------------------------------------------ controls catalog


def read_control_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """Control id -> default parameters of a controls file (policies/controls/*.yml)."""
    data = yaml.safe_load(path.read_text())
    return {c["id"]: dict(c.get("parameters") or {}) for c in data["controls"]}
