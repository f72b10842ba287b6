"""How a host keeps its logs: journald's effective settings, and rsyslog's file modes, network
inputs and forwarding targets as its configuration files state them.

The modes of the log files themselves come from `system_files` (`system-logfiles`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import (
    grep_files,
    needs,
    or_error,
    split_grep,
    systemd_settings,
    uncommented,
)


def parse_journald(lines: list[str]) -> dict[str, tuple[str, str]]:
    """Effective [Journal] settings from `systemd-analyze cat-config`: key -> (value, file)."""
    return systemd_settings(lines, "Journal")


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
    for path, texts in split_grep(lines).items():
        active_lines = [uncommented(text) for text in texts]
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


JOURNALD_COMMAND = needs("systemd-analyze") + or_error(
    "systemd-analyze cat-config systemd/journald.conf"
)
RSYSLOG_COMMAND = grep_files("/etc/rsyslog.conf", "/etc/rsyslog.d/*.conf")

register_section("system-journald", JOURNALD_COMMAND, parse_journald)
register_section("system-rsyslog", RSYSLOG_COMMAND, parse_rsyslog)
