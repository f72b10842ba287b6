"""What the Linux audit system records: auditd.conf and the rules files as written, and the
status and rules the kernel has loaded (`auditctl`). Both kinds of rule are reduced to what
they mean (`AuditRule`), so a rule in rules.d matches its `auditctl -l` rendering.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import grep_files, needs, split_grep, uncommented


@dataclass(frozen=True)
class AuditRule:
    """An audit rule reduced to what it means, so `auditctl -l` output matches the file text."""

    kind: str  # watch, syscall, control, other
    target: str  # watched path, "always,exit", "-e", or the text
    items: frozenset[str] = frozenset()  # permissions (watch) or syscalls
    fields: frozenset[str] = frozenset()
    key: str = ""

    def covers(self, wanted: AuditRule) -> bool:
        """This rule records at least what `wanted` asks for (same filters, same key)."""
        if (self.kind, self.target, self.key) != (wanted.kind, wanted.target, wanted.key):
            return False
        return self.fields == wanted.fields and wanted.items <= self.items


_UNSET_AUID = {"-1", "4294967295", "unset"}


def _field(text: str) -> str:
    match = re.match(r"^([\w]+)(!=|>=|<=|=|>|<|&=|&)(.*)$", text)
    if not match:
        return text
    name, op, value = match.groups()
    if name == "auid" and value in _UNSET_AUID:
        value = "unset"
    return f"{name}{op}{value}"


def _compare(text: str) -> str:
    # `-C euid!=uid` and `-C uid!=euid` are the same rule; auditctl -l prints either
    for op in ("!=", "="):
        left, sep, right = text.partition(op)
        if sep:
            return "C:" + op.join(sorted((left, right)))
    return "C:" + text


def parse_audit_rule(text: str) -> AuditRule | None:
    """One rule line as written in rules.d or printed by `auditctl -l`; None for blanks."""
    text = uncommented(text)
    if not text:
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return AuditRule("other", text)
    if words[0] in ("-e", "-b", "-f", "-D", "-r", "--backlog_wait_time", "--loginuid-immutable"):
        return AuditRule("control", words[0], fields=frozenset(words[1:]))
    options: dict[str, list[str]] = {}
    pairs = iter(words)
    for word in pairs:
        options.setdefault(word, []).append(next(pairs, ""))
    key = (options.pop("-k", []) or [""])[-1]
    fields = set()
    for value in options.get("-F", []):
        if value.startswith("key="):
            key = value[4:]
        else:
            fields.add(_field(value))
    fields |= {_compare(value) for value in options.get("-C", [])}
    if "-w" in options:
        path = options["-w"][0]
        path = path.rstrip("/") or "/"
        return AuditRule("watch", path, frozenset(options.get("-p", ["rwxa"])[0]), key=key)
    if "-a" in options or "-A" in options:
        action = ",".join(sorted((options.get("-a") or options.get("-A") or [""])[0].split(",")))
        syscalls = {s for value in options.get("-S", []) for s in value.split(",") if s}
        return AuditRule("syscall", action, frozenset(syscalls), frozenset(fields), key)
    return AuditRule("other", " ".join(words))


@dataclass(frozen=True)
class AuditFiles:
    settings: dict[str, str]  # auditd.conf, lower-case keys
    rules: tuple[tuple[AuditRule, str], ...]  # (rule, file) in the order augenrules joins them


def parse_audit_files(lines: list[str]) -> AuditFiles:
    settings: dict[str, str] = {}
    rules: list[tuple[AuditRule, str]] = []
    files = split_grep(lines)
    for path in sorted(files):
        for text in files[path]:
            if path.endswith("auditd.conf"):
                key, sep, value = uncommented(text).partition("=")
                if sep:
                    settings[key.strip().lower()] = value.strip()
            else:
                rule = parse_audit_rule(text)
                if rule is not None:
                    rules.append((rule, path))
    return AuditFiles(settings, tuple(rules))


@dataclass(frozen=True)
class AuditLoaded:
    status: dict[str, str]
    rules: tuple[AuditRule, ...]


def parse_audit_loaded(lines: list[str]) -> AuditLoaded:
    status: dict[str, str] = {}
    rules = []
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "S":
            key, _, value = text.partition(" ")
            status[key] = value.strip()
        elif tag == "R" and text.strip() != "No rules":
            rule = parse_audit_rule(text)
            if rule is not None:
                rules.append(rule)
    return AuditLoaded(status, tuple(rules))


AUDIT_FILES_COMMAND = grep_files("/etc/audit/auditd.conf", "/etc/audit/rules.d/*.rules")
AUDIT_LOADED_COMMAND = (
    needs("auditctl", "auditd is not installed")
    + "status=$(auditctl -s 2>&1) || { echo '@@error'; printf '%s\\n' \"$status\" | head -2;"
    " exit 0; }; printf '%s\\n' \"$status\" | sed 's/^/S /'; auditctl -l 2>&1 | sed 's/^/R /'"
)

register_section("system-audit-files", AUDIT_FILES_COMMAND, parse_audit_files)
register_section("system-audit-loaded", AUDIT_LOADED_COMMAND, parse_audit_loaded)
