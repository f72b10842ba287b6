"""sudoers as sudo reads it, from the `access-files` section (see `access`): the files in
include order, `Defaults` settings and user specifications. Its own module because sudoers has
its own grammar (continuations, comments that are not comments, quoted settings).

It registers no section; these are pure functions of the files' lines.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from cityguard.verify.sections.access import SUDOERS, SUDOERS_DIR


@dataclass(frozen=True)
class SudoDefault:
    """One setting of a `Defaults` line: `use_pty`, `!authenticate`, `timestamp_timeout=15`."""

    path: str
    scope: str  # "" for plain Defaults, else e.g. ":alice" or ">root"
    name: str
    value: str | None  # None for a flag
    negated: bool


@dataclass(frozen=True)
class SudoRule:
    """A user specification: `alice ALL=(ALL) NOPASSWD: ALL`."""

    path: str
    principal: str
    text: str

    @property
    def nopasswd(self) -> bool:
        return re.search(r"\bNOPASSWD\s*:", self.text) is not None


@dataclass
class Sudoers:
    defaults: list[SudoDefault] = field(default_factory=list)
    rules: list[SudoRule] = field(default_factory=list)

    def global_values(self, name: str) -> list[SudoDefault]:
        """Plain `Defaults` settings of `name`, in the order sudo applies them."""
        return [d for d in self.defaults if d.name == name and not d.scope]

    def effective(self, name: str) -> SudoDefault | None:
        values = self.global_values(name)
        return values[-1] if values else None


def sudoers_files(files: Mapping[str, list[str]]) -> list[str]:
    """/etc/sudoers, then the includedir files sudo reads (names with '.' or '~' are skipped)."""
    included = sorted(
        p
        for p in files
        if p.startswith(SUDOERS_DIR + "/")
        and "." not in p.rsplit("/", 1)[1]
        and not p.endswith("~")
    )
    return [SUDOERS, *included]


def _logical_lines(lines: list[str]) -> list[str]:
    joined, current = [], ""
    for raw in lines:
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        joined.append(current + raw)
        current = ""
    if current:
        joined.append(current)
    return joined


def _strip_comment(line: str) -> str:
    # '#' starts a comment unless it is #include/#includedir or a uid (#1000)
    stripped = line.strip()
    if re.match(r"^#include(dir)?\s", stripped):
        return stripped
    return re.sub(r"(^|\s)#(?!\d).*$", "", stripped).strip()


def _split_settings(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace = ","
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return [part.strip() for part in lexer if part.strip()]
    except ValueError:  # an unbalanced quote: fall back to a plain split
        return [part.strip() for part in text.split(",") if part.strip()]


def parse_sudoers(files: Mapping[str, list[str]]) -> Sudoers:
    sudoers = Sudoers()
    for path in sudoers_files(files):
        for raw in _logical_lines(files.get(path, [])):
            text = _strip_comment(raw)
            if not text or text.startswith(("#include", "@include")):
                continue
            match = re.match(r"^Defaults([:@>!]\S+)?\s+(.*)$", text)
            if match:
                scope = match.group(1) or ""
                for setting in _split_settings(match.group(2)):
                    name, sep, value = setting.partition("=")
                    name = name.strip().rstrip("+-").strip()
                    negated = name.startswith("!")
                    sudoers.defaults.append(
                        SudoDefault(
                            path,
                            scope,
                            name.lstrip("!").strip(),
                            value.strip().strip('"') if sep else None,
                            negated,
                        )
                    )
                continue
            if re.match(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\s", text):
                continue
            principal = text.split(None, 1)[0]
            sudoers.rules.append(SudoRule(path, principal, " ".join(text.split())))
    return sudoers
