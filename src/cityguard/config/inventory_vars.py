"""Connection variables checked when the inventory loads, and ``host_vars/``, ``group_vars/``.

A bad ``ansible_host`` (``10.0.0.300``, ``web 1``) would otherwise surface only when Ansible or
testinfra tries to connect, as an "unreachable" host in the middle of a run; here it is one
located line before anything starts.

Ansible reads ``host_vars/<host>.yml`` and ``group_vars/<group>.yml`` beside the inventory, and
an operator keeps addresses there so the inventory stays reviewable. cityguard writes each run's
inventory to the run directory, where Ansible would no longer find them, so they are read here and
merged the way Ansible ranks them (a vars file wins over the inventory's own vars). Files naming
no host or group, and the directory form (``host_vars/web1/``), are refused, never ignored.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from cityguard.config.errors import ConfigError, ConfigProblem, KeyPath
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SUFFIXES = (".yml", ".yaml")


def address_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable ``ansible_host`` (an IP address or a DNS name), or None."""
    if not isinstance(value, str) or not value:
        return "must be an IP address or a host name"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"'{value[:60]}' is neither an IP address nor a valid host name"
    if labels[-1].isdigit():  # 10.0.0.300 is a mistyped address, not a name
        return f"'{value[:60]}' is not a valid IP address"
    return None


def connection_problems(
    doc: YamlDocument, path: KeyPath, variables: dict[Any, Any]
) -> list[ConfigProblem]:
    """Problems of the connection variables cityguard and Ansible rely on."""
    problems = []
    if "ansible_host" in variables:
        message = address_problem(variables["ansible_host"])
        if message is not None:
            problems.append(doc.problem((*path, "ansible_host"), message))
    if "ansible_port" in variables:
        port = variables["ansible_port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append(doc.problem((*path, "ansible_port"), "must be a port number 1-65535"))
    return problems


def merge_vars_dirs(
    hosts: dict[str, dict[str, Any]],
    group_vars: dict[str, dict[str, Any]],
    directory: Path,
    shown: str,
) -> None:
    """Merge ``host_vars/`` and ``group_vars/`` beside the inventory into its ``hosts`` and
    ``group_vars`` (every group has an entry there); ConfigError if any file is bad.

    ``shown`` is how the inventory's directory is named in messages.
    """
    problems: list[ConfigProblem] = []
    for kind, known in (("group_vars", group_vars), ("host_vars", hosts)):
        folder = directory / kind
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            display = f"{shown}/{kind}/{entry.name}" if shown else f"{kind}/{entry.name}"
            problems += _merge_one(kind, known, entry, display)
    if problems:
        raise ConfigError(problems)


def _merge_one(
    kind: str, known: dict[str, dict[str, Any]], entry: Path, display: str
) -> list[ConfigProblem]:
    if entry.name.startswith("."):
        return []
    if entry.is_dir():
        return [
            ConfigProblem(
                display,
                None,
                "(document)",
                f"a directory of vars files is not supported: write {kind}/{entry.name}.yml",
            )
        ]
    name = entry.stem if entry.suffix in _SUFFIXES else entry.name
    what = "group" if kind == "group_vars" else "host"
    if name not in known:
        return [
            ConfigProblem(display, None, "(document)", f"no {what} named '{name}' in the inventory")
        ]
    try:
        doc = load_yaml_file(entry, display)
    except ConfigError as exc:
        return exc.problems
    if not isinstance(doc.data, dict):
        return [doc.problem((), "a vars file must be a mapping of variable names")]
    problems = connection_problems(doc, (), doc.data)
    if not problems:
        known[name].update(doc.data)
    return problems
