"""A site's lab description (lab.yml): what the lab image holds, which services run where, and
the sample data of the site's information systems.

The lab knows no site's groups, packages or data. A site that needs more than the base packages
(image.BASE_PACKAGES), services that run only on some hosts, or sample data for its backups and
restore drills, says so in a lab.yml beside its site file; the site file itself knows nothing
of the lab. Problems are reported like a site file's: one located line each, all at once.
docs/lab.md describes the format.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from cityguard.config.errors import (
    ConfigError,
    ConfigProblem,
    KeyPath,
    problems_from_validation,
)
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file
from cityguard.lab.image import BASE_PACKAGES, ImageRecipe

LAB_FILE = "lab.yml"
# Debian policy: lowercase letters, digits, '+', '-', '.'; at least two characters
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
UNIT_NAME = re.compile(
    r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|mount|automount|swap|target|slice)$"
)
# every host is in this group, though the inventory's groups_of leaves it out
ALL_HOSTS = "all"
# a PostgreSQL database name cityguard creates: plain lowercase, nothing to quote
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _package(value: str) -> str:
    if not PACKAGE_NAME.match(value):
        raise ValueError("must be a Debian package name (lowercase letters, digits, '+', '-', '.')")
    return value


def _unit(value: str) -> str:
    if not UNIT_NAME.match(value):
        raise ValueError("must be a systemd unit name with its suffix, e.g. postgresql.service")
    return value


def _command(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a shell command, not empty")
    return value


def _database(value: str) -> str:
    if not DATABASE_NAME.match(value):
        raise ValueError("must be a database name (lowercase letters, digits, '_')")
    return value


def _relative_file(value: str) -> str:
    if not value.strip() or Path(value).is_absolute():
        raise ValueError("must be a file path relative to the lab file")
    return value


PackageName = Annotated[str, AfterValidator(_package)]
UnitName = Annotated[str, AfterValidator(_unit)]
Command = Annotated[str, AfterValidator(_command)]
DatabaseName = Annotated[str, AfterValidator(_database)]
RelativeFile = Annotated[str, AfterValidator(_relative_file)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSection(_Section):
    """What the lab image holds besides the base packages every lab host has."""

    installed: list[PackageName] = Field(
        default_factory=list,
        description="Packages installed in the image, e.g. what a fresh server of the site has.",
    )
    downloaded: list[PackageName] = Field(
        default_factory=list,
        description="Packages only downloaded into APT's cache, with their recommends, e.g. "
        "what the hardening installs: hosts have no mirror, and installing stays real work.",
    )
    masked: list[UnitName] = Field(
        default_factory=list,
        description="Units masked in the image because they cannot run in a container, "
        "e.g. auditd.service.",
    )


class GroupSection(_Section):
    """The services that run on the hosts of one inventory group, and only there."""

    units: list[UnitName] = Field(
        default_factory=list,
        description="systemd units enabled on the group's hosts and disabled on every other "
        "host (nspawn flavour), e.g. postgresql.service.",
    )
    start: list[Command] = Field(
        default_factory=list,
        description="Shell commands that start the services without systemd (plain flavour), "
        "run in order, in parallel with sshd.",
    )
    stop: list[Command] = Field(
        default_factory=list,
        description="Shell commands that stop them when the host stops (plain flavour).",
    )


class DatabaseEntry(_Section):
    """A database made afresh on a host and loaded from an SQL file."""

    host: str = Field(min_length=1, description="Inventory host running PostgreSQL.")
    database: DatabaseName = Field(description="The database, dropped and created again.")
    sql: RelativeFile = Field(
        description="SQL file loaded with psql as the postgres user, relative to the lab file."
    )


class ScriptEntry(_Section):
    """A shell script run as root on a host, e.g. to make the file trees a plan backs up."""

    host: str = Field(min_length=1, description="Inventory host the script runs on.")
    script: RelativeFile = Field(
        description="Shell script (run with sh -e as root), relative to the lab file."
    )


class DataSection(_Section):
    """The sample data of the site's information systems, and the restore targets' isolation."""

    databases: list[DatabaseEntry] = Field(
        default_factory=list, description="Databases to load, in order."
    )
    scripts: list[ScriptEntry] = Field(
        default_factory=list, description="Scripts to run, in order, after the databases."
    )
    isolated_groups: list[str] = Field(
        default_factory=list,
        description="Inventory groups whose hosts open no connection to another host (a "
        "recovery segment, for restore drills): an nftables table on each drops them.",
    )


class LabFile(_Section):
    """The whole lab.yml."""

    image: ImageSection = Field(default_factory=ImageSection, description="The lab image.")
    groups: dict[str, GroupSection] = Field(
        default_factory=dict,
        description="Inventory group name -> the services its hosts run.",
    )
    data: DataSection = Field(
        default_factory=DataSection,
        description="Sample data loaded by `cityguard lab data`.",
    )


@dataclass(frozen=True)
class HostServices:
    """What the lab turns on and off on one host, from the groups the host is in."""

    enabled_units: tuple[str, ...] = ()
    disabled_units: tuple[str, ...] = ()
    # one block of commands per group, each run in the background in order (plain flavour)
    start_blocks: tuple[tuple[str, ...], ...] = ()
    # the groups' stop commands, last group first
    stop_commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseLoad:
    host: str
    database: str
    sql: Path


@dataclass(frozen=True)
class ScriptRun:
    host: str
    script: Path


@dataclass(frozen=True)
class SampleData:
    """What `cityguard lab data` does: databases, then scripts, then the isolation."""

    databases: tuple[DatabaseLoad, ...] = ()
    scripts: tuple[ScriptRun, ...] = ()
    isolated_groups: tuple[str, ...] = ()

    def empty(self) -> bool:
        return not (self.databases or self.scripts or self.isolated_groups)

    def hosts(self) -> tuple[str, ...]:
        """The hosts data is loaded onto, once each, in file order."""
        return _unique([*(d.host for d in self.databases), *(s.host for s in self.scripts)])


@dataclass(frozen=True)
class LabDescription:
    """A validated lab description: the image recipe, per group its services, sample data."""

    source: str  # the file it was read from, or "built-in default"
    image: ImageRecipe = field(default_factory=ImageRecipe)
    groups: Mapping[str, GroupSection] = field(default_factory=dict)
    data: SampleData = field(default_factory=SampleData)

    def units(self) -> tuple[str, ...]:
        """Every unit a group names, once each, in file order."""
        return _unique(unit for group in self.groups.values() for unit in group.units)

    def services_for(self, host_groups: Collection[str]) -> HostServices:
        """The services of a host in host_groups; groups apply in the order of the file."""
        mine = [
            group for name, group in self.groups.items() if name == ALL_HOSTS or name in host_groups
        ]
        enabled = _unique(unit for group in mine for unit in group.units)
        return HostServices(
            enabled_units=enabled,
            disabled_units=tuple(unit for unit in self.units() if unit not in enabled),
            start_blocks=tuple(tuple(group.start) for group in mine if group.start),
            stop_commands=tuple(command for group in reversed(mine) for command in group.stop),
        )


DEFAULT_LAB = LabDescription("built-in default")
"""For a site without a lab.yml: the base packages, and no service beyond sshd."""


def load_lab_file(
    path: Path,
    display: str | None = None,
    inventory_groups: Collection[str] | None = None,
    inventory_hosts: Collection[str] | None = None,
) -> LabDescription:
    """Read and validate a lab.yml; raises ConfigError listing every problem found.

    display is how the file is named in problems (default: the path as given). When
    inventory_groups is given, a group the inventory does not have is a problem too: its
    services would silently run nowhere; so is, with inventory_hosts, a data host it lacks.
    The data section's files must exist beside the lab file.
    """
    doc = load_yaml_file(path, display if display is not None else str(path))
    problems = [
        *_list_problems(doc),
        *_group_problems(doc, inventory_groups),
        *_data_problems(doc, path.parent, inventory_groups, inventory_hosts),
    ]
    model: LabFile | None = None
    try:
        model = LabFile.model_validate(doc.data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, doc.file, doc.lines, LabFile)
    if problems or model is None:
        raise ConfigError(sorted(problems, key=lambda p: (p.line is None, p.line or 0)))
    base = path.parent.resolve()
    return LabDescription(
        source=doc.file,
        image=ImageRecipe(
            installed=_unique([*BASE_PACKAGES, *model.image.installed]),
            downloaded=tuple(model.image.downloaded),
            masked=tuple(model.image.masked),
        ),
        groups=dict(model.groups),
        data=SampleData(
            databases=tuple(
                DatabaseLoad(d.host, d.database, base / d.sql) for d in model.data.databases
            ),
            scripts=tuple(ScriptRun(s.host, base / s.script) for s in model.data.scripts),
            isolated_groups=_unique(model.data.isolated_groups),
        ),
    )


def _list_problems(doc: YamlDocument) -> Iterator[ConfigProblem]:
    """Entries listed twice, and packages or units given two roles that exclude each other.

    Read from the raw data (strings only), so these come out together with the schema's.
    """
    data = _mapping(doc.data)
    image = _mapping(data.get("image"))
    groups = {str(name): _mapping(body) for name, body in _mapping(data.get("groups")).items()}
    lists: list[tuple[KeyPath, Any]] = [
        (("image", key), image.get(key)) for key in ("installed", "downloaded", "masked")
    ]
    lists += [
        (("groups", name, key), body.get(key))
        for name, body in groups.items()
        for key in ("units", "start", "stop")
    ]
    lists.append((("data", "isolated_groups"), _mapping(data.get("data")).get("isolated_groups")))
    for path, items in lists:
        seen: set[str] = set()
        for index, item in _strings(items):
            if item in seen:
                yield doc.problem((*path, index), f"'{item}' is listed twice")
            seen.add(item)
    installed = {package for _, package in _strings(image.get("installed"))}
    installed |= set(BASE_PACKAGES)
    for index, package in _strings(image.get("downloaded")):
        if package in installed:
            yield doc.problem(
                ("image", "downloaded", index),
                f"'{package}' is also installed (image.installed or a base package): "
                "a package is either installed or only downloaded",
            )
    masked = {unit for _, unit in _strings(image.get("masked"))}
    for name, body in groups.items():
        for index, unit in _strings(body.get("units")):
            if unit in masked:
                yield doc.problem(
                    ("groups", name, "units", index),
                    f"'{unit}' is masked in image.masked, so it cannot run",
                )


def _group_problems(
    doc: YamlDocument, inventory_groups: Collection[str] | None
) -> list[ConfigProblem]:
    """Groups the inventory does not have: their services would silently run nowhere."""
    if inventory_groups is None:
        return []
    known = sorted(set(inventory_groups) | {ALL_HOSTS})
    return [
        doc.problem(
            ("groups", str(name)),
            f"the inventory has no group '{name}' (groups: {', '.join(known)})",
        )
        for name in _mapping(_mapping(doc.data).get("groups"))
        if str(name) not in known
    ]


def _data_problems(
    doc: YamlDocument,
    base: Path,
    inventory_groups: Collection[str] | None,
    inventory_hosts: Collection[str] | None,
) -> Iterator[ConfigProblem]:
    """Data files that are missing, hosts and groups the inventory does not have.

    Read from the raw data, so these come out together with the schema's problems.
    """
    data = _mapping(_mapping(doc.data).get("data"))
    for kind, file_key in (("databases", "sql"), ("scripts", "script")):
        entries = data.get(kind)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            entry = _mapping(entry)
            host = entry.get("host")
            if (
                inventory_hosts is not None
                and isinstance(host, str)
                and host  # an empty one is the schema's problem
                and host not in inventory_hosts
            ):
                yield doc.problem(
                    ("data", kind, index, "host"),
                    f"the inventory has no host '{host}' "
                    f"(hosts: {', '.join(sorted(inventory_hosts))})",
                )
            relative = entry.get(file_key)
            if isinstance(relative, str) and relative.strip() and not Path(relative).is_absolute():
                target = base / relative
                if not target.is_file():
                    reason = "is not a file" if target.exists() else "file not found"
                    yield doc.problem(("data", kind, index, file_key), f"{reason}: {relative}")
    if inventory_groups is not None:
        known = sorted(set(inventory_groups) - {ALL_HOSTS})
        for index, group in _strings(data.get("isolated_groups")):
            if group not in known:
                yield doc.problem(
                    ("data", "isolated_groups", index),
                    f"the inventory has no group '{group}' (groups: {', '.join(known)})",
                )


def _mapping(value: Any) -> dict[Any, Any]:
    """value when it is a mapping, else an empty one (the schema reports what it is)."""
    return value if isinstance(value, dict) else {}


def _strings(items: Any) -> list[tuple[int, str]]:
    """The string items of a list with their index (the schema reports anything else)."""
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, str)]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
