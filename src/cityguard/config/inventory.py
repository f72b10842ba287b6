"""The site's Ansible YAML inventory: hosts, groups and their variables.

We read the inventory ourselves (instead of asking ansible-inventory) so that mistakes are
reported with file and line before any playbook runs, and so that ``--limit`` can be checked
up front: Ansible silently matches nothing for a misspelt group, and a hardening run that
touched no host looks like a success. Hosts are ordered as Ansible orders them (a group's
vars, then its children, then its own hosts), which is the order the YAML plugin walks.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cityguard.config.errors import ConfigError, ConfigProblem, KeyPath
from cityguard.config.inventory_vars import connection_problems, merge_vars_dirs
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file

GROUP_KEYS = ("children", "hosts", "vars")
_HOST_RANGE = re.compile(r"\[[^\]]*:[^\]]*\]")


@dataclass
class Inventory:
    """Hosts and groups as loaded; ``groups`` already includes hosts reached via children.

    ``groups`` always has ``all``. ``members`` and ``children`` keep the direct structure so
    the inventory can be written back (``to_ansible``) with the same meaning.
    """

    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)

    def host_names(self) -> list[str]:
        """All hosts in inventory order."""
        return list(self.hosts)

    def groups_of(self, host: str) -> list[str]:
        """Groups ``host`` belongs to, directly or via children; like Ansible's group_names.

        ``all`` is left out because every host is in it, so it tells nothing.
        """
        if host not in self.hosts:
            raise KeyError(host)
        return [name for name, hosts in self.groups.items() if name != "all" and host in hosts]

    def select(self, limit: str | None) -> list[str]:
        """Hosts matched by an Ansible-like limit, in inventory order.

        ``limit`` is comma-separated host or group names, ``all``, and ``!name`` to exclude;
        only exclusions means "all but these". Unknown names are errors rather than empty
        matches so a typo cannot turn a run into a no-op, and a selection that comes out empty
        (an empty group, ``!all``) is refused: handed on as an empty Ansible limit it would
        mean every host. Every command that targets hosts selects them here.
        """
        selected = self._match(limit)
        if not selected:
            what = f"--limit '{limit}' selects" if limit and limit.strip() else "the inventory has"
            raise ConfigError(
                [ConfigProblem(self.source or "", None, "limit", f"{what} no host; nothing to do")]
            )
        return selected

    def _match(self, limit: str | None) -> list[str]:
        if limit is None or not limit.strip():
            return self.host_names()
        included: set[str] = set()
        excluded: set[str] = set()
        has_inclusion = False
        unknown: list[str] = []
        for term in (part.strip() for part in limit.split(",")):
            if not term:
                continue
            negate = term.startswith("!")
            name = term[1:].strip() if negate else term
            matched = self._expand(name)
            if matched is None:
                unknown.append(name)
            elif negate:
                excluded.update(matched)
            else:
                included.update(matched)
                has_inclusion = True
        if unknown:
            raise ConfigError(
                [ConfigProblem("", None, "limit", f"no host or group named '{n}'") for n in unknown]
            )
        base = included if has_inclusion else set(self.hosts)
        return [host for host in self.hosts if host in base and host not in excluded]

    def _expand(self, name: str) -> set[str] | None:
        if name not in self.groups and name not in self.hosts:
            return None
        found = set(self.groups.get(name, []))
        if name in self.hosts:
            found.add(name)
        return found

    def with_hostvars(self, extra: dict[str, dict[str, Any]]) -> Inventory:
        """A copy whose host vars are overlaid with ``extra`` (extra wins, key by key).

        The lab writes connection details (addresses, ports, keys) separately from the
        site's inventory, which stays address-free and reviewable; this joins the two.
        """
        unknown = [host for host in extra if host not in self.hosts]
        if unknown:
            raise ConfigError(
                [ConfigProblem("", None, "hostvars", f"no host named '{h}'") for h in unknown]
            )
        merged = copy.deepcopy(self)
        for host, values in extra.items():
            merged.hosts[host].update(copy.deepcopy(values))
        return merged

    def to_ansible(self) -> dict[str, Any]:
        """The YAML inventory structure; ``load_inventory`` of it gives an equal Inventory.

        A group reachable from several parents is written in full once and referenced as
        ``{}`` elsewhere; a host's vars are written at its first listing. Ansible (and our
        loader) merge repeated mentions, so the meaning is unchanged.
        """
        return {"all": self._group_body("all", set(), set())}

    def _group_body(self, name: str, seen_groups: set[str], seen_hosts: set[str]) -> Any:
        seen_groups.add(name)
        children: dict[str, Any] = {}
        for child in self.children.get(name, []):
            children[child] = (
                {} if child in seen_groups else self._group_body(child, seen_groups, seen_hosts)
            )
        hosts: dict[str, Any] = {}
        for host in self.members.get(name, []):
            hosts[host] = {} if host in seen_hosts else copy.deepcopy(self.hosts[host])
            seen_hosts.add(host)
        body: dict[str, Any] = {}
        if hosts:
            body["hosts"] = hosts
        if children:
            body["children"] = children
        if self.group_vars.get(name):
            body["vars"] = copy.deepcopy(self.group_vars[name])
        return body

    def to_ansible_list(self) -> dict[str, Any]:
        """What `ansible-inventory --list` prints for this inventory: each group's direct hosts
        and children, and per host its variables merged as Ansible ranks them (``all``, then
        groups from the least to the most nested, then the host's own). Lets a reader of that
        format (testinfra) skip starting Ansible just to list the inventory."""
        depth: dict[str, int] = {"all": 0}
        pending = ["all"]
        while pending:
            parent = pending.pop()
            for child in self.children.get(parent, []):
                if depth.get(child, -1) < depth[parent] + 1:
                    depth[child] = depth[parent] + 1
                    pending.append(child)
        listing: dict[str, Any] = {"_meta": {"hostvars": {}}}
        for group in self.groups:
            body: dict[str, Any] = {}
            if self.members.get(group):
                body["hosts"] = list(self.members[group])
            if self.children.get(group):
                body["children"] = list(self.children[group])
            listing[group] = body
        for host, own in self.hosts.items():
            merged: dict[str, Any] = {}
            containing = [g for g, members in self.groups.items() if host in members]
            for group in sorted(containing, key=lambda g: (depth.get(g, 0), g)):
                merged.update(copy.deepcopy(self.group_vars.get(group, {})))
            merged.update(copy.deepcopy(own))
            listing["_meta"]["hostvars"][host] = merged
        return listing

    def write(self, path: Path) -> None:
        """Write the inventory as YAML, atomically so a reader never sees half a file."""
        text = "# Ansible inventory written by cityguard.\n" + yaml.safe_dump(
            self.to_ansible(), sort_keys=False, default_flow_style=False, allow_unicode=True
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load_inventory(path: Path, display: str | None = None) -> Inventory:
    """Load an Ansible YAML inventory; raises ConfigError with every problem, located.

    ``host_vars/`` and ``group_vars/`` beside it are merged in (cityguard.config.inventory_vars).
    """
    doc = load_yaml_file(path, display)
    inventory = _Reader(doc).read()
    shown = str(Path(display).parent) if display is not None else str(path.parent)
    merge_vars_dirs(
        inventory.hosts, inventory.group_vars, path.parent, "" if shown == "." else shown
    )
    return inventory


class _Reader:
    """Walks the inventory data once, collecting structure and problems."""

    def __init__(self, doc: YamlDocument) -> None:
        self._doc = doc
        self._inv = Inventory(source=doc.file)
        self._edges: dict[tuple[str, str], KeyPath] = {}
        self._problems: list[ConfigProblem] = []

    def read(self) -> Inventory:
        data = self._doc.data
        if not isinstance(data, dict):
            self._problem((), "an inventory must be a mapping of group names (usually 'all')")
            raise ConfigError(self._problems)
        self._ensure_group("all")
        for name, body in data.items():
            if str(name) != "all":
                self._link("all", str(name), (str(name),))
            self._group(str(name), body, (str(name),))
        self._check_cycles()
        if self._problems:
            raise ConfigError(sorted(self._problems, key=lambda p: p.line or 0))
        self._resolve_groups()
        return self._inv

    def _problem(self, path: KeyPath, message: str) -> None:
        self._problems.append(self._doc.problem(path, message))

    def _ensure_group(self, name: str) -> None:
        self._inv.members.setdefault(name, [])
        self._inv.children.setdefault(name, [])
        self._inv.group_vars.setdefault(name, {})

    def _link(self, parent: str, child: str, path: KeyPath) -> None:
        self._ensure_group(parent)
        if child == "all":
            self._problem(path, "'all' cannot be a child of another group")
            return
        if child not in self._inv.children[parent]:
            self._inv.children[parent].append(child)
            self._edges[(parent, child)] = path

    def _group(self, name: str, body: Any, path: KeyPath) -> None:
        self._ensure_group(name)
        if body is None:
            return
        if not isinstance(body, dict):
            self._problem(path, "a group must be a mapping with hosts, children or vars")
            return
        for key in body:
            if key not in GROUP_KEYS:
                self._problem((*path, str(key)), f"unknown key (allowed: {', '.join(GROUP_KEYS)})")
        variables = body.get("vars")
        if isinstance(variables, dict):
            self._problems += connection_problems(self._doc, (*path, "vars"), variables)
            self._inv.group_vars[name].update(variables)
        elif variables is not None:
            self._problem((*path, "vars"), "group vars must be a mapping")
        self._children(name, body.get("children"), (*path, "children"))
        self._hosts(name, body.get("hosts"), (*path, "hosts"))

    def _children(self, name: str, children: Any, path: KeyPath) -> None:
        if children is None:
            return
        if not isinstance(children, dict):
            self._problem(path, "children must be a mapping of group names")
            return
        for child, body in children.items():
            child_path = (*path, str(child))
            self._link(name, str(child), child_path)
            if str(child) != "all":
                self._group(str(child), body, child_path)

    def _hosts(self, group: str, hosts: Any, path: KeyPath) -> None:
        if hosts is None:
            return
        if not isinstance(hosts, dict):
            self._problem(path, "hosts must be a mapping of host name to host vars")
            return
        for raw_host, variables in hosts.items():
            host = str(raw_host)
            host_path = (*path, host)
            if _HOST_RANGE.search(host):
                self._problem(host_path, "host ranges are not supported: list each host")
                continue
            if variables is not None and not isinstance(variables, dict):
                self._problem(host_path, "host vars must be a mapping (or empty)")
                continue
            self._problems += connection_problems(self._doc, host_path, variables or {})
            self._inv.hosts.setdefault(host, {}).update(variables or {})
            if host not in self._inv.members[group]:
                self._inv.members[group].append(host)

    def _check_cycles(self) -> None:
        """A group that contains itself would make membership infinite; Ansible rejects it."""
        done: set[str] = set()

        def visit(group: str, trail: list[str]) -> None:
            for child in self._inv.children.get(group, []):
                if child in trail:
                    cycle = " -> ".join([*trail[trail.index(child) :], child])
                    self._problem(self._edges[(group, child)], f"group cycle: {cycle}")
                elif child not in done:
                    visit(child, [*trail, child])
            done.add(group)

        for group in list(self._inv.children):
            if group not in done:
                visit(group, [group])

    def _resolve_groups(self) -> None:
        order = list(self._inv.hosts)
        resolved: dict[str, set[str]] = {}

        def members_of(group: str) -> set[str]:
            if group not in resolved:
                found = set(self._inv.members.get(group, []))
                for child in self._inv.children.get(group, []):
                    found |= members_of(child)
                resolved[group] = found
            return resolved[group]

        for group in self._inv.members:
            chosen = set(order) if group == "all" else members_of(group)
            self._inv.groups[group] = [host for host in order if host in chosen]
