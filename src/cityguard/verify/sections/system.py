"""Fact sections of the system area: packages, systemd units, time sync, logging, auditd,
automatic updates, the nftables firewall, AppArmor, listening sockets, and one filesystem-wide
scan for world-writable and unowned paths.

Every snippet is read-only and prints `@@error` plus the reason when it cannot gather; every
parser is a pure function of the lines the snippet printed, so it is unit-tested on real output.
Firewall rules are parsed from `nft -j list ruleset` into a small model that can say which
verdict a described packet gets (`evaluate`), so checks assert behaviour, not rule text.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from cityguard.config import content_root
from cityguard.verify.expectations import Expect
from cityguard.verify.facts import register_section

ERROR = "@@error"
SCAN_LIMIT = 200  # paths kept per kind; the count is always complete


@cache
def default_parameters(control_file: str) -> dict[str, dict[str, Any]]:
    """Control id -> default parameters in policies/controls/<control_file>.

    Checks that prove one thing per listed item (a file, an audit rule, a package) are
    parametrized from these at collection time; the values in force come from `param()`.
    """
    path = Path(content_root()) / "policies" / "controls" / control_file
    data = yaml.safe_load(path.read_text())
    return {c["id"]: c.get("parameters") or {} for c in data["controls"]}


def holds(expect: Expect, ok: bool, observed: Any, requirement: str, label: str) -> None:
    """Record what was observed against a requirement that is not plain equality (a mode no
    wider than, a number at least): passes when `ok`, else fails showing the requirement."""
    expect.equal(
        observed,
        observed if ok else requirement,
        f"{label} ({requirement})" if label else requirement,
    )


def parameter_items(control_file: str, parameter: str) -> list[tuple[str, str]]:
    """(control id, key) for every key of a mapping parameter, e.g. every file of `files`."""
    return [
        (control_id, str(key))
        for control_id, parameters in default_parameters(control_file).items()
        for key in parameters.get(parameter) or {}
    ]


def _grep_files(*globs: str) -> str:
    """`path:line` for every line of the files (missing ones silently skipped)."""
    return f"grep -H '' {' '.join(globs)} 2>/dev/null; true"


def _split_grep(lines: Iterable[str]) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {}
    for line in lines:
        path, sep, text = line.partition(":")
        if sep:
            files.setdefault(path, []).append(text)
    return files


def _active(text: str, comment: str = "#") -> str:
    """A config line without its comment and surrounding blanks."""
    return text.split(comment, 1)[0].strip()


# ------------------------------------------------------------------ packages and services


@dataclass(frozen=True)
class Package:
    name: str
    status: str  # dpkg's abbreviated status, e.g. "ii", "rc", "un"
    version: str

    @property
    def installed(self) -> bool:
        # second letter: n not installed, c config files only; anything else has files on disk
        return len(self.status) > 1 and self.status[1] not in "nc"

    @property
    def state(self) -> str:
        if self.installed:
            return "installed"
        if self.status[1:2] == "c":
            return "removed, configuration files remain"
        return "not installed"

    @property
    def label(self) -> str:
        """The name, with the version when installed (it goes into the evidence)."""
        return f"{self.name} {self.version}" if self.installed else self.name

    def describe(self) -> str:
        return f"{self.label} {self.state}"


def parse_packages(lines: list[str]) -> dict[str, Package]:
    packages = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[1]:
            packages[parts[1]] = Package(parts[1], parts[0].strip(), parts[2])
    return packages


def package(packages: Mapping[str, Package], name: str) -> Package:
    return packages.get(name) or Package(name, "un", "")


@dataclass(frozen=True)
class Unit:
    name: str
    file_state: str | None  # enabled, disabled, masked, static, ...; None: no unit file
    load: str = "not-found"
    active: str = "inactive"
    sub: str = "dead"

    def describe(self) -> str:
        if self.file_state is None and self.load == "not-found":
            return f"{self.name} not found"
        return f"{self.name} {self.file_state or self.load}, {self.active}"


def parse_units(lines: list[str]) -> dict[str, Unit]:
    """`F unit state` lines from list-unit-files and `A unit load active sub` from list-units."""
    files: dict[str, str] = {}
    loaded: dict[str, tuple[str, str, str]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "F":
            files[parts[1]] = parts[2]
        elif len(parts) >= 5 and parts[0] == "A":
            loaded[parts[1]] = (parts[2], parts[3], parts[4])
    units = {}
    for name in set(files) | set(loaded):
        load, active, sub = loaded.get(name, ("not-loaded", "inactive", "dead"))
        if name in files and load == "not-loaded":
            load = "loaded"
        units[name] = Unit(name, files.get(name), load, active, sub)
    return units


def unit(units: Mapping[str, Unit], name: str) -> Unit:
    return units.get(name) or Unit(name, None)


def parse_processes(lines: list[str]) -> list[tuple[str, str]]:
    """(user, command) of every process."""
    result = []
    for line in lines:
        parts = line.split(None, 1)
        if len(parts) == 2:
            result.append((parts[0], parts[1].strip()))
    return result


@dataclass(frozen=True)
class Listener:
    protocol: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.address.split("%")[0]).is_loopback
        except ValueError:
            return self.address == "localhost"


def parse_listeners(lines: list[str]) -> list[Listener]:
    """`proto local-address:port` lines, from `ss -Hltnu`."""
    result = []
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            continue
        address, _, port = parts[1].rpartition(":")
        if port.isdigit():
            result.append(Listener(parts[0], address.strip("[]") or "*", int(port)))
    return result


# ------------------------------------------------------------------ filesystem scan


@dataclass(frozen=True)
class Found:
    """Paths of one kind the scan found: at most SCAN_LIMIT listed, `count` always complete."""

    count: int = 0
    paths: tuple[str, ...] = ()

    def excluding(self, prefixes: Iterable[str]) -> Found:
        """Without paths under the excluded prefixes; unlisted ones cannot be told apart, so the
        count drops only by the listed paths that were excluded."""
        roots = [p.rstrip("/") for p in prefixes if p]
        kept = tuple(
            p for p in self.paths if not any(p == r or p.startswith(r + "/") for r in roots)
        )
        return Found(self.count - (len(self.paths) - len(kept)), kept)

    def describe(self, shown: int = 20) -> str:
        if self.count == 0:
            return "none"
        listed = ", ".join(self.paths[:shown])
        more = self.count - min(len(self.paths), shown)
        return f"{self.count}: {listed}" + (f" and {more} more" if more > 0 else "")


SCAN_KINDS = ("ww-file", "ww-dir", "unowned", "ungrouped")


def parse_scan(lines: list[str]) -> dict[str, Found]:
    paths: dict[str, list[str]] = {kind: [] for kind in SCAN_KINDS}
    counts: dict[str, int] = dict.fromkeys(SCAN_KINDS, 0)
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] == "count" and parts[1] in counts:
            counts[parts[1]] = int(parts[2])
        elif len(parts) == 2 and parts[0] in paths:
            paths[parts[0]].append(parts[1])
    return {
        kind: Found(max(counts[kind], len(paths[kind])), tuple(sorted(set(paths[kind]))))
        for kind in SCAN_KINDS
    }


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int
    owner: str
    group: str

    def describe(self) -> str:
        return f"{self.path} {self.mode:04o} {self.owner}:{self.group}"


def parse_entries(lines: list[str]) -> list[Entry]:
    """`mode<TAB>owner<TAB>group<TAB>path` lines (find -printf '%m\\t%u\\t%g\\t%p\\n')."""
    result = []
    for line in lines:
        parts = line.split("\t", 3)
        if len(parts) == 4:
            result.append(Entry(parts[3], int(parts[0], 8), parts[1], parts[2]))
    return result


# ------------------------------------------------------------------ time synchronisation


@dataclass(frozen=True)
class ChronyConfig:
    sources: tuple[tuple[str, str, str], ...]  # (directive, address, file)
    users: tuple[tuple[str, str], ...]  # (user directive value, file)
    daemon_opts: str | None


CHRONY_SOURCES = ("server", "pool", "peer", "refclock")


def parse_chrony(lines: list[str]) -> ChronyConfig:
    sources, users, daemon_opts = [], [], None
    for path, texts in _split_grep(lines).items():
        for text in texts:
            active = _active(text)
            if path.startswith("/etc/default/"):
                key, sep, value = active.partition("=")
                if sep and key.strip() == "DAEMON_OPTS":
                    daemon_opts = value.strip().strip("\"'")
                continue
            words = active.split()
            if len(words) >= 2 and words[0] in CHRONY_SOURCES:
                sources.append((words[0], words[1], path))
            elif len(words) >= 2 and words[0] == "user":
                users.append((words[1], path))
    return ChronyConfig(tuple(sources), tuple(users), daemon_opts)


# ------------------------------------------------------------------ logging


def parse_journald(lines: list[str]) -> dict[str, tuple[str, str]]:
    """Effective [Journal] settings from `systemd-analyze cat-config`: key -> (value, file)."""
    result: dict[str, tuple[str, str]] = {}
    current_file, section = "", ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# /"):
            current_file, section = stripped[2:], ""
            continue
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            continue
        key, sep, value = stripped.partition("=")
        if sep and section == "Journal":
            result[key.strip()] = (value.strip(), current_file)
    return result


@dataclass(frozen=True)
class Forward:
    target: str
    port: str
    protocol: str
    file: str

    def describe(self) -> str:
        return f"{self.protocol}://{self.target}:{self.port} ({self.file})"


@dataclass(frozen=True)
class RsyslogConfig:
    file_create_modes: tuple[tuple[str, str], ...]  # (mode, file)
    inputs: tuple[tuple[str, str], ...]  # (network input module or directive, file)
    forwards: tuple[Forward, ...]


_LEGACY_MODE = re.compile(r"^\$FileCreateMode\s+([0-7]+)", re.I)
_SCRIPT_MODE = re.compile(r"\bfileCreateMode\s*=\s*\"([0-7]+)\"", re.I)
_NET_INPUTS = (
    re.compile(r"^\$ModLoad\s+(imtcp|imudp|imrelp)\b", re.I),
    re.compile(r"\bmodule\s*\(\s*load\s*=\s*\"(imtcp|imudp|imrelp)\"", re.I),
    re.compile(r"\binput\s*\(\s*type\s*=\s*\"(imtcp|imudp|imrelp)\"", re.I),
    re.compile(r"^\$(InputTCPServerRun|UDPServerRun|InputUDPServerRun|InputRELPServerRun)\b", re.I),
)
_ACTION = re.compile(r"\baction\s*\((.*?)\)", re.S | re.I)
_PARAM = re.compile(r"([\w.]+)\s*=\s*\"([^\"]*)\"")
_LEGACY_FORWARD = re.compile(r"^\S+\s+(@@?)(?:\(\S*\))?(\[[^\]]+\]|[^\s:;]+)(?::(\d+))?")


def parse_rsyslog(lines: list[str]) -> RsyslogConfig:
    modes, inputs, forwards = [], [], []
    for path, texts in _split_grep(lines).items():
        active_lines = [_active(text) for text in texts]
        for text in active_lines:
            for pattern in (_LEGACY_MODE, _SCRIPT_MODE):
                modes += [(m, path) for m in pattern.findall(text)]
            for pattern in _NET_INPUTS:
                found = pattern.search(text)
                if found:
                    inputs.append((found.group(1), path))
            legacy = _LEGACY_FORWARD.match(text)
            if legacy:
                protocol = "tcp" if legacy.group(1) == "@@" else "udp"
                target = legacy.group(2).strip("[]")
                forwards.append(Forward(target, legacy.group(3) or "514", protocol, path))
        for action in _ACTION.findall("\n".join(active_lines)):
            params = {k.lower(): v for k, v in _PARAM.findall(action)}
            if params.get("type", "").lower() == "omfwd":
                forwards.append(
                    Forward(
                        params.get("target", ""),
                        params.get("port", "514"),
                        params.get("protocol", "udp").lower(),
                        path,
                    )
                )
    return RsyslogConfig(tuple(modes), tuple(inputs), tuple(forwards))


# ------------------------------------------------------------------ auditd


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
    text = _active(text)
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
    files = _split_grep(lines)
    for path in sorted(files):
        for text in files[path]:
            if path.endswith("auditd.conf"):
                key, sep, value = _active(text).partition("=")
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


# ------------------------------------------------------------------ boot and AppArmor


@dataclass(frozen=True)
class Boot:
    cmdline: tuple[str, ...]
    grub_cfg: bool  # /boot/grub/grub.cfg exists
    kernel_lines: tuple[tuple[str, ...], ...]  # the parameters of each `linux` line in grub.cfg


def parse_boot(lines: list[str]) -> Boot:
    cmdline: tuple[str, ...] = ()
    present, kernels = False, []
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "C":
            cmdline = tuple(text.split())
        elif tag == "G":
            present = text.strip() == "present"
        elif tag == "L":
            kernels.append(tuple(text.split()[2:]))  # after `linux /vmlinuz-...`
    return Boot(cmdline, present, tuple(kernels))


@dataclass(frozen=True)
class AppArmor:
    enabled: str  # Y, N, or absent (no AppArmor in this kernel or namespace)
    profiles: dict[str, str]  # name -> mode
    unconfined_processes: tuple[str, ...]  # processes with a profile that runs unconfined


def parse_apparmor(lines: list[str]) -> AppArmor:
    enabled, profiles, unconfined = "absent", {}, []
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "enabled":
            enabled = text.strip()
        elif tag == "profile":
            match = re.match(r"^(.*) \((\w+)\)$", text.strip())
            if match:
                profiles[match.group(1)] = match.group(2)
        elif tag == "json" and text.strip():
            status = json.loads(text)
            for process, entries in (status.get("processes") or {}).items():
                for entry in entries:
                    if entry.get("status") == "unconfined":
                        unconfined.append(f"{process} (pid {entry.get('pid')})")
    return AppArmor(enabled, profiles, tuple(unconfined))


def parse_listing(lines: list[str]) -> dict[str, list[str]]:
    """`directory name` lines -> directory -> names."""
    result: dict[str, list[str]] = {}
    for line in lines:
        directory, sep, name = line.partition(" ")
        if sep:
            result.setdefault(directory, []).append(name)
    return result


# ------------------------------------------------------------------ automatic updates


@dataclass(frozen=True)
class AptState:
    config: dict[str, list[str]]  # apt-config key -> values (lists have one value per item)
    stamps: dict[str, int]  # path -> modification time (epoch seconds)
    now: int

    def value(self, key: str) -> str | None:
        values = self.config.get(key)
        return values[-1] if values else None

    def age_days(self, path: str) -> float | None:
        if path not in self.stamps:
            return None
        return round((self.now - self.stamps[path]) / 86400, 1)


_APT_LINE = re.compile(r'^(\S+?)(::)?\s+"(.*)";$')


def parse_apt(lines: list[str]) -> AptState:
    config: dict[str, list[str]] = {}
    stamps, now = {}, 0
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "C":
            match = _APT_LINE.match(text.strip())
            if match and match.group(3):
                config.setdefault(match.group(1), []).append(match.group(3))
        elif tag == "S":
            seconds, _, path = text.partition(" ")
            stamps[path.strip()] = int(seconds)
        elif tag == "N":
            now = int(text)
    return AptState(config, stamps, now)


# ------------------------------------------------------------------ nftables


@dataclass(frozen=True)
class Match:
    left: str  # e.g. "meta iifname", "tcp dport", "ip saddr", "ct state"
    op: str  # ==, !=, in
    right: frozenset[str]

    def text(self) -> str:
        values = ",".join(sorted(self.right))
        op = "" if self.op in ("==", "in") else f"{self.op} "
        return f"{self.left} {op}{values}"


@dataclass(frozen=True)
class Rule:
    matches: tuple[Match, ...]
    verdict: str | None  # accept, drop, reject, jump:<chain>, goto:<chain>, return, or None
    position: int

    def text(self) -> str:
        parts = [m.text() for m in self.matches]
        if self.verdict:
            parts.append(self.verdict.replace(":", " "))
        return " ".join(parts)


@dataclass(frozen=True)
class Chain:
    family: str
    table: str
    name: str
    hook: str | None
    policy: str | None
    rules: tuple[Rule, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass(frozen=True)
class Ruleset:
    chains: tuple[Chain, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f"{c.family} {c.table}" for c in self.chains))

    def base_chains(self, hook: str) -> list[Chain]:
        return [c for c in self.chains if c.hook == hook]

    def chain(self, family: str, table: str, name: str) -> Chain | None:
        for candidate in self.chains:
            if (candidate.family, candidate.table, candidate.name) == (family, table, name):
                return candidate
        return None

    def canonical(self, family: str, table: str) -> list[tuple[str, str | None, str | None, str]]:
        """The table's chains and rule texts, comparable between two rulesets."""
        return [
            (c.name, c.hook, c.policy, " | ".join(r.text() for r in c.rules))
            for c in self.chains
            if (c.family, c.table) == (family, table)
        ]


def _left(expression: Any) -> str:
    if isinstance(expression, dict):
        if "meta" in expression:
            return f"meta {expression['meta']['key']}"
        if "payload" in expression:
            payload = expression["payload"]
            return f"{payload.get('protocol', payload.get('base', '?'))} {payload['field']}"
        if "ct" in expression:
            return f"ct {expression['ct']['key']}"
        return json.dumps(expression, sort_keys=True)
    return str(expression)


def _values(expression: Any) -> frozenset[str]:
    if isinstance(expression, list):
        return frozenset(v for item in expression for v in _values(item))
    if isinstance(expression, dict):
        if "set" in expression:
            return _values(expression["set"])
        if "prefix" in expression:
            return frozenset({f"{expression['prefix']['addr']}/{expression['prefix']['len']}"})
        if "range" in expression:
            low, high = expression["range"]
            return frozenset({f"{low}-{high}"})
        return frozenset({json.dumps(expression, sort_keys=True)})
    return frozenset({str(expression)})


_VERDICTS = ("accept", "drop", "reject", "return", "continue")


def _rule(expressions: list[dict[str, Any]], position: int) -> Rule:
    matches, verdict = [], None
    for statement in expressions:
        if "match" in statement:
            match = statement["match"]
            matches.append(Match(_left(match["left"]), match["op"], _values(match["right"])))
        for name in _VERDICTS:
            if name in statement:
                verdict = name
        for name in ("jump", "goto"):
            if name in statement:
                verdict = f"{name}:{statement[name]['target']}"
    return Rule(tuple(matches), verdict, position)


def parse_nft(lines: list[str]) -> Ruleset | None:
    """`nft -j list ruleset` output; None when the snippet reported the file absent."""
    text = "\n".join(lines).strip()
    if text == "absent":
        return None
    if text.startswith("invalid"):
        raise ValueError("nft could not load it: " + text[len("invalid") :].strip())
    objects = json.loads(text)["nftables"] if text else []
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    for item in objects:
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            rules.setdefault(key, []).append(_rule(r.get("expr", []), len(rules.get(key, [])) + 1))
    return Ruleset(
        tuple(
            Chain(f, t, n, c.get("hook"), c.get("policy"), tuple(rules.get((f, t, n), [])))
            for (f, t, n), c in chains.items()
        )
    )


# A packet is described by the fields a rule may test; a field absent from the description
# is unknown (e.g. conntrack state of a neighbour solicitation): a rule testing it may or may
# not match, so an accept there does not count and a drop there does.
Packet = Mapping[str, str]


def _in_network(value: str, candidates: frozenset[str]) -> bool | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    for candidate in candidates:
        try:
            if address in ipaddress.ip_network(candidate, strict=False):
                return True
        except ValueError:
            continue
    return False


def _port_in(value: str, candidates: frozenset[str]) -> bool:
    for candidate in candidates:
        low, sep, high = candidate.partition("-")
        if sep and low.isdigit() and high.isdigit() and value.isdigit():
            if int(low) <= int(value) <= int(high):
                return True
        elif candidate == value:
            return True
    return False


_PROTOCOL_OF = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp"}
_FAMILY_OF = {"ip": "ipv4", "ip6": "ipv6", "icmp": "ipv4", "icmpv6": "ipv6"}


def _implied_mismatch(left: str, packet: Packet) -> bool:
    """A payload test implies its protocol: `tcp dport` never matches a UDP packet, `ip saddr`
    never an IPv6 one, whatever the operator."""
    base = left.split()[0]
    l4proto, nfproto = packet.get("meta l4proto"), packet.get("meta nfproto")
    if base in _PROTOCOL_OF and l4proto is not None and _PROTOCOL_OF[base] != l4proto:
        return True
    return base in _FAMILY_OF and nfproto is not None and _FAMILY_OF[base] != nfproto


def _match(match: Match, packet: Packet) -> bool | None:
    """True: matches; False: does not; None: depends on something the packet leaves open."""
    if _implied_mismatch(match.left, packet):
        return False
    if match.left not in packet:
        return None
    value = packet[match.left]
    hit: bool | None
    if match.left.endswith(("saddr", "daddr")):
        hit = _in_network(value, match.right)
    elif match.left.endswith(("dport", "sport")):
        hit = _port_in(value, match.right)
    else:
        hit = value in match.right
    if hit is None:
        return None
    return (not hit) if match.op == "!=" else hit


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    chain: str
    reason: str

    def describe(self) -> str:
        return f"{'accepted' if self.accepted else 'dropped'} by {self.chain} ({self.reason})"


def _walk(ruleset: Ruleset, chain: Chain, packet: Packet, depth: int) -> Verdict | None:
    for rule in chain.rules:
        outcomes = [_match(m, packet) for m in rule.matches]
        if False in outcomes or rule.verdict is None:
            continue
        certain = None not in outcomes
        where = f"rule {rule.position}: {rule.text()}"
        if rule.verdict == "accept":
            if certain:
                return Verdict(True, chain.label, where)
        elif rule.verdict in ("drop", "reject"):
            return Verdict(False, chain.label, where)
        elif rule.verdict.startswith(("jump:", "goto:")) and depth < 16:
            target = ruleset.chain(chain.family, chain.table, rule.verdict.split(":", 1)[1])
            inner = _walk(ruleset, target, packet, depth + 1) if target else None
            if inner is not None:
                if inner.accepted and not certain:
                    continue
                return inner
            if rule.verdict.startswith("goto:") and certain:
                break
        elif rule.verdict == "return" and certain:
            return None
    return None


def evaluate(ruleset: Ruleset, packet: Packet, hook: str = "input") -> list[Verdict]:
    """The verdict of every base chain on `hook` that sees the packet (ip chains see only
    IPv4, ip6 chains only IPv6); the packet passes only if all of them accept it."""
    nfproto = packet.get("meta nfproto")
    verdicts = []
    for chain in ruleset.base_chains(hook):
        if chain.family not in ("inet", "ip", "ip6"):
            continue
        if chain.family != "inet" and _FAMILY_OF[chain.family] != (
            nfproto or _FAMILY_OF[chain.family]
        ):
            continue
        verdict = _walk(ruleset, chain, packet, 0)
        if verdict is None:
            policy = chain.policy or "accept"
            verdict = Verdict(policy == "accept", chain.label, f"policy {policy}")
        verdicts.append(verdict)
    return verdicts


def packet_for(
    protocol: str, port: int | None = None, source: str | None = None, **fields: str
) -> dict[str, str]:
    """A packet arriving on a network interface: protocol tcp/udp/icmp/icmpv6, destination
    port, source address, and further fields by their nft names (e.g. `ct state`)."""
    packet: dict[str, str] = {"meta iifname": "eth0", "meta iif": "eth0"}
    family = {"icmp": "ipv4", "icmpv6": "ipv6"}.get(protocol)
    if source is not None:
        family = "ipv6" if ":" in source else "ipv4"
        packet["ip6 saddr" if family == "ipv6" else "ip saddr"] = source
    if family:
        packet["meta nfproto"] = family
        packet["ip6 nexthdr" if family == "ipv6" else "ip protocol"] = _PROTOCOL_OF[protocol]
    packet["meta l4proto"] = _PROTOCOL_OF[protocol]
    if port is not None:
        packet[f"{protocol} dport"] = str(port)
        packet["th dport"] = str(port)
    for name, value in fields.items():
        packet[name.replace("_", " ")] = value
    return packet


# ------------------------------------------------------------------ firewall expectations


@dataclass(frozen=True)
class Service:
    """A port the firewall opens on a host, and from where (empty sources: from anywhere)."""

    name: str
    port: int
    protocol: str
    sources: tuple[str, ...]
    restricted: bool  # False: open to everyone


def host_sources(hostvars: Mapping[str, Any]) -> list[str]:
    """The addresses a host connects from: `firewall_addresses`, else an IP `ansible_host`."""
    explicit = hostvars.get("firewall_addresses")
    if explicit:
        return [str(a) for a in explicit]
    candidate = str(hostvars.get("ansible_host", ""))
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return []
    return [candidate]


def approved_services(
    services_by_group: Mapping[str, list[Mapping[str, Any]]],
    group_names: Iterable[str],
    groups: Mapping[str, list[str]],
    hostvars_of: Callable[[str], Mapping[str, Any]],
) -> list[Service]:
    """The services a host's groups open, with `from_groups` resolved to member addresses."""
    result = []
    for group in ["all", *sorted(group_names)]:
        for item in services_by_group.get(group) or []:
            sources = [str(s) for s in item.get("from") or []]
            for source_group in item.get("from_groups") or []:
                for member in groups.get(source_group, []):
                    sources += host_sources(hostvars_of(member))
            restricted = bool(item.get("from") or item.get("from_groups"))
            result.append(
                Service(
                    str(item.get("name", item["port"])),
                    int(item["port"]),
                    str(item.get("protocol", "tcp")),
                    tuple(dict.fromkeys(sources)),
                    restricted,
                )
            )
    return result


# ------------------------------------------------------------------ the snippets

_FS_TYPES = "ext[234]|xfs|btrfs|zfs|jfs|f2fs|reiserfs|vfat|overlay|tmpfs"
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev", "/run")

SCAN = (
    # every local, disk-like filesystem once (-xdev keeps each find root on its own device)
    f"roots=$(awk '$3 ~ /^({_FS_TYPES})$/ && $2 !~ /^\\/(proc|sys|dev|run)(\\/|$)/ "
    "{print $2}' /proc/self/mounts | sort -u); "
    "find ${roots:-/} -xdev \\( "
    + " -o ".join(f"-path {p}" for p in _PSEUDO_ROOTS)
    + " \\) -prune -o \\( "
    "\\( -type f -perm -0002 -printf 'ww-file\\t%p\\n' \\) , "
    "\\( -type d -perm -0002 ! -perm -1000 -printf 'ww-dir\\t%p\\n' \\) , "
    "\\( -nouser -printf 'unowned\\t%p\\n' \\) , "
    "\\( -nogroup -printf 'ungrouped\\t%p\\n' \\) \\) 2>/dev/null"
    f" | awk -F'\\t' '{{n[$1]++; if (n[$1] <= {SCAN_LIMIT}) print}} "
    'END {for (k in n) print "count\\t" k "\\t" n[k]}\''
)

_NEEDS = (
    "command -v {tool} >/dev/null || {{ echo '@@error'; echo '{tool} not found{why}'; exit 0; }}; "
)


def _needs(tool: str, why: str = "") -> str:
    return _NEEDS.format(tool=tool, why=f" ({why})" if why else "")


def _or_error(command: str, tag: str = "") -> str:
    """Run `command`; print its output (each line prefixed with `tag`), or @@error and why."""
    prefix = f" | sed 's/^/{tag} /'" if tag else ""
    return (
        f"out=$({command} 2>&1) && printf '%s\\n' \"$out\"{prefix} "
        "|| { echo '@@error'; printf '%s\\n' \"$out\" | head -3; }"
    )


SNIPPETS: dict[str, tuple[str, Callable[[list[str]], Any]]] = {
    "system-packages": (
        _needs("dpkg-query", "not a Debian-family host")
        + "dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\n' 2>/dev/null; true",
        parse_packages,
    ),
    "system-units": (
        "[ -d /run/systemd/system ] || { echo '@@error'; "
        "echo 'systemd is not running on this host'; exit 0; }; "
        "systemctl list-unit-files --no-legend --no-pager --type=service,socket,timer "
        "2>/dev/null | awk '{print \"F\", $1, $2}'; "
        "systemctl list-units --all --no-legend --no-pager --plain --type=service,socket,timer "
        "2>/dev/null | awk '{print \"A\", $1, $2, $3, $4}'",
        parse_units,
    ),
    "system-processes": ("ps -eo user:32=,comm= 2>/dev/null; true", parse_processes),
    "system-listeners": ("ss -Hltnu 2>/dev/null | awk '{print $1, $5}'; true", parse_listeners),
    "system-scan": (SCAN, parse_scan),
    "system-sshd-dropins": (
        "find /etc/ssh/sshd_config.d -maxdepth 1 -type f -printf '%m\\t%u\\t%g\\t%p\\n' "
        "2>/dev/null; true",
        parse_entries,
    ),
    "system-logfiles": (
        "find /var/log -xdev -type f -printf '%m\\t%u\\t%g\\t%p\\n' 2>/dev/null | head -n 2000",
        parse_entries,
    ),
    "system-chrony": (
        _grep_files(
            "/etc/chrony/chrony.conf",
            "/etc/chrony/conf.d/*.conf",
            "/etc/chrony/sources.d/*.sources",
            "/etc/default/chrony",
        ),
        parse_chrony,
    ),
    "system-journald": (
        _needs("systemd-analyze") + _or_error("systemd-analyze cat-config systemd/journald.conf"),
        parse_journald,
    ),
    "system-rsyslog": (_grep_files("/etc/rsyslog.conf", "/etc/rsyslog.d/*.conf"), parse_rsyslog),
    "system-audit-files": (
        _grep_files("/etc/audit/auditd.conf", "/etc/audit/rules.d/*.rules"),
        parse_audit_files,
    ),
    "system-audit-loaded": (
        _needs("auditctl", "auditd is not installed")
        + "status=$(auditctl -s 2>&1) || { echo '@@error'; printf '%s\\n' \"$status\" | head -2;"
        " exit 0; }; printf '%s\\n' \"$status\" | sed 's/^/S /'; auditctl -l 2>&1 | sed 's/^/R /'",
        parse_audit_loaded,
    ),
    "system-boot": (
        "sed 's/^/C /' /proc/cmdline; if [ -f /boot/grub/grub.cfg ]; then echo 'G present'; "
        "grep -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg | sed 's/^[[:space:]]*/L /';"
        " else echo 'G absent'; fi",
        parse_boot,
    ),
    "system-apparmor": (
        "e=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null); "
        'echo "enabled ${e:-absent}"; '
        "[ -r /sys/kernel/security/apparmor/profiles ] && "
        "sed 's/^/profile /' /sys/kernel/security/apparmor/profiles; "
        'if [ "$e" = Y ] && command -v aa-status >/dev/null; then '
        'echo "json $(aa-status --json 2>/dev/null)"; fi; true',
        parse_apparmor,
    ),
    "system-apparmor-files": (
        "for d in disable force-complain; do for f in /etc/apparmor.d/$d/*; do "
        '[ -e "$f" ] && echo "$d ${f##*/}"; done; done; true',
        parse_listing,
    ),
    "system-apt": (
        "apt-config dump 2>/dev/null | grep -E "
        "'^(APT::Periodic::|Unattended-Upgrade::(Origins-Pattern|Allowed-Origins)::)' "
        "| sed 's/^/C /'; for f in /var/lib/apt/periodic/update-success-stamp "
        '/var/lib/apt/periodic/unattended-upgrades-stamp; do [ -e "$f" ] && '
        'echo "S $(stat -c %Y "$f") $f"; done; echo "N $(date +%s)"',
        parse_apt,
    ),
    "system-nft": (
        _needs("nft", "nftables is not installed") + _or_error("nft -j list ruleset"),
        parse_nft,
    ),
    # the ruleset the host would boot with, loaded into a throw-away network namespace
    "system-nft-boot": (
        _needs("nft", "nftables is not installed")
        + "[ -f /etc/nftables.conf ] || { echo absent; exit 0; }; "
        "unshare --net true 2>/dev/null || { echo '@@error'; "
        "echo 'cannot create a scratch network namespace to load /etc/nftables.conf'; exit 0; }; "
        "out=$(unshare --net sh -c 'nft -f /etc/nftables.conf >/dev/null && nft -j list ruleset'"
        " 2>&1) && printf '%s\\n' \"$out\" || { echo invalid; printf '%s\\n' \"$out\" | head -3; }",
        parse_nft,
    ),
}

for _name, (_command, _parser) in SNIPPETS.items():
    register_section(_name, _command, _parser)
