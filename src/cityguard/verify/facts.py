"""Everything the checks need from a host, gathered in one SSH round trip and cached for the run.

One command per assertion is too slow at fleet scale (docs/architecture.md), so the checks assert in
Python on what this module collected. Each section is a shell snippet whose output is parsed
in Python. The core sections live here; an area adds its own with `register_section()` in a
module under `cityguard.verify.sections`, which is imported before any check runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARK = "@@cityguard-section "

# Directories systemd-sysctl reads, lowest precedence first: a file name in a later directory
# hides the same name in an earlier one. /etc/sysctl.conf is read only through Debian's
# /etc/sysctl.d/99-sysctl.conf link, in name order like any other file.
SYSCTL_DIRS = ("/usr/lib/sysctl.d", "/usr/local/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d")

_registered_paths: set[str] = set()


class SectionError(RuntimeError):
    """A gathering command failed on the host; checks using its data cannot be evaluated."""


def watch_paths(*paths: str) -> tuple[str, ...]:
    """Declare paths whose stat the checks need; call at import time of a check module."""
    _registered_paths.update(paths)
    return paths


@dataclass(frozen=True)
class Section:
    """A shell snippet run as root on the host and the parser of its output lines.

    A snippet that cannot gather its data prints a line `@@error` followed by the reason, so
    the checks depending on it become errors (could not evaluate), never false failures.
    """

    name: str
    command: str
    parse: Callable[[list[str]], Any]


_sections: dict[str, Section] = {}
CORE_SECTIONS = ("container", "sshd", "sysctl", "sysctl-files", "stat")


def register_section(name: str, command: str, parse: Callable[[list[str]], Any]) -> None:
    """Add a section gathered in the same round trip as the core ones."""
    if name in CORE_SECTIONS or name in _sections:
        raise ValueError(f"fact section {name!r} is already registered")
    _sections[name] = Section(name, command, parse)


@dataclass(frozen=True)
class FileStat:
    path: str
    mode: int
    owner: str
    group: str
    kind: str

    @property
    def mode_text(self) -> str:
        return f"{self.mode:04o}"


@dataclass
class HostFacts:
    """Parsed host state: the core sections as attributes, others through `section()`."""

    container: str | None = None
    sshd: dict[str, list[str]] = field(default_factory=dict)
    sysctl_runtime: dict[str, str] = field(default_factory=dict)
    sysctl_persisted: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # key -> (value, file)
    stats: dict[str, FileStat | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Any:
        """A registered section's parsed data; SectionError if it could not be gathered."""
        if name in self.errors:
            raise SectionError(f"gathering {name} failed on the host: {self.errors[name]}")
        if name not in self.sections:
            raise KeyError(f"no fact section {name!r}: register it with register_section()")
        return self.sections[name]

    def sshd_option(self, name: str) -> str | None:
        """The effective value of a single-valued sshd option (from `sshd -T`).

        Raises SectionError when `sshd -T` itself failed, so the check is an error (could not
        evaluate) rather than a failure claiming the option is absent.
        """
        if "sshd" in self.errors:
            raise SectionError(f"sshd -T failed on the host: {self.errors['sshd']}")
        values = self.sshd.get(name.lower())
        return values[0] if values else None

    def stat(self, path: str) -> FileStat | None:
        if path not in self.stats:
            raise KeyError(f"{path} was not gathered: declare it with watch_paths()")
        return self.stats[path]


def gather_script(paths: set[str]) -> str:
    """The shell script run (as root) on the host; each section starts with a marker line."""
    quoted = " ".join(shlex.quote(p) for p in sorted(paths)) or "/dev/null"
    sysctl_globs = " ".join(f"{d}/*.conf" for d in SYSCTL_DIRS)
    sections = {
        "container": "systemd-detect-virt --container || true",
        # stdout only: sshd's warnings must not parse as options; on failure say why
        "sshd": "sshd -T 2>/dev/null || { echo '@@error'; sshd -T 2>&1 >/dev/null | head -3; }",
        "sysctl": "sysctl -a 2>/dev/null || true",
        "sysctl-files": f"grep -H '' {sysctl_globs} 2>/dev/null || true",
        "stat": f"stat -c '%n\t%a\t%U\t%G\t%F' {quoted} 2>&1 || true",
    }
    sections.update({name: section.command for name, section in sorted(_sections.items())})
    # each snippet in its own subshell, so one that exits or fails cannot cut the others short
    body = "; ".join(f"echo '{MARK}{name}'; ( {cmd} )" for name, cmd in sections.items())
    return f"sh -c {shlex.quote(body)}"


def split_sections(output: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARK):
            current = sections.setdefault(line[len(MARK) :], [])
        elif current is not None:
            current.append(line)
    return sections


def parse_sshd(lines: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key:
            options.setdefault(key.lower(), []).append(value.strip())
    return options


def parse_sysctl(lines: list[str]) -> dict[str, str]:
    values = {}
    for line in lines:
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_sysctl_files(lines: list[str]) -> dict[str, tuple[str, str]]:
    """The value each key gets at boot, applying systemd-sysctl's precedence rules."""
    by_file: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        path, sep, content = line.partition(":")
        content = content.strip()
        if not sep or not content or content[0] in "#;":
            continue
        key, eq, value = content.partition("=")
        if eq:
            by_file.setdefault(path, []).append((key.strip().lstrip("-"), value.strip()))
    # the same file name in a later directory replaces the earlier one entirely
    winners: dict[str, str] = {}
    for path in by_file:
        directory, _, name = path.rpartition("/")
        if directory in SYSCTL_DIRS:
            previous = winners.get(name)
            if previous is None or SYSCTL_DIRS.index(directory) > SYSCTL_DIRS.index(
                previous.rpartition("/")[0]
            ):
                winners[name] = path
    ordered = [winners[name] for name in sorted(winners)]
    result: dict[str, tuple[str, str]] = {}
    for path in ordered:
        for key, value in by_file[path]:
            result[key.replace("/", ".")] = (value, path)
    return result


def parse_stats(lines: list[str], paths: set[str]) -> dict[str, FileStat | None]:
    stats: dict[str, FileStat | None] = dict.fromkeys(paths)
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 5 and parts[0] in stats:
            stats[parts[0]] = FileStat(parts[0], int(parts[1], 8), parts[2], parts[3], parts[4])
    return stats


def collect(run_as_root: Callable[[str], tuple[int, str, str]]) -> HostFacts:
    """Gather and parse; `run_as_root(command)` returns (rc, stdout, stderr) from the host."""
    paths = set(_registered_paths)
    rc, stdout, stderr = run_as_root(gather_script(paths))
    if rc != 0:
        raise RuntimeError(f"gathering host facts failed (rc={rc}): {stderr.strip()[:300]}")
    sections = split_sections(stdout)
    facts = HostFacts()
    container = [line for line in sections.get("container", []) if line.strip()]
    facts.container = container[0].strip() if container and container[0] != "none" else None
    sshd_lines = sections.get("sshd", [])
    if any(line.startswith("@@error") for line in sshd_lines):
        facts.errors["sshd"] = " ".join(ln for ln in sshd_lines if ln != "@@error").strip()
    else:
        facts.sshd = parse_sshd(sshd_lines)
    facts.sysctl_runtime = parse_sysctl(sections.get("sysctl", []))
    facts.sysctl_persisted = parse_sysctl_files(sections.get("sysctl-files", []))
    facts.stats = parse_stats(sections.get("stat", []), paths)
    for name, section in _sections.items():
        lines = sections.get(name, [])
        if lines and lines[0] == "@@error":
            facts.errors[name] = " ".join(lines[1:]).strip() or "no reason given"
            continue
        try:
            facts.sections[name] = section.parse(lines)
        except Exception as exc:  # a parser bug must not take every other check down
            facts.errors[name] = f"could not parse the output: {exc}"
    return facts
