"""Drill plans: one YAML file per information system, validated with every problem at once.

dr/plan-schema.md documents the keys. Checking is in two passes, as for the site file: the
shape of every plan (pydantic, located by line), then the rules that look across plans and at
the inventory: hosts exist, the restore target is a scratch host and never a source host of any
plan (whatever the plan says), a verification step names a source of the right kind, system
names are unique, schedules are valid systemd calendar expressions (``schedule.offsite`` only
for an S3 repository, its runs, or the default's, less than ``retention_days`` apart).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cityguard.config.errors import ConfigError, ConfigProblem, KeyPath, problems_from_validation
from cityguard.config.inventory import Inventory
from cityguard.config.site import CredentialName, EnvName, check_secret_source, make_secret_ref
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file
from cityguard.core.secrets import SecretRef
from cityguard.drill.durations import parse_duration

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
SUBSET = re.compile(r"^(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError("must be lowercase letters, digits and '-' (at most 63)")
    return value


def _absolute(value: str) -> str:
    if not value.startswith("/") or "\n" in value or "/../" in f"{value}/":
        raise ValueError("must be an absolute path without '..'")
    return value.rstrip("/") or "/"


class Targets(_Model):
    rpo: str = Field(
        description="Recovery point objective: the most data loss accepted (e.g. 24h)."
    )
    rto: str = Field(description="Recovery time objective: the longest restore accepted (e.g. 1h).")

    @field_validator("rpo", "rto")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def rpo_s(self) -> int:
        return parse_duration(self.rpo)

    @property
    def rto_s(self) -> int:
        return parse_duration(self.rto)


class Freshness(_Model):
    table: str = Field(description="Table whose newest row shows how recent the data is.")
    column: str = Field(description="Its timestamp column.")

    @field_validator("table", "column")
    @classmethod
    def _ident(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError("must be a SQL identifier (schema.table allowed)")
        return value


class PostgresSource(_Model):
    kind: Literal["postgresql"] = Field(description="A PostgreSQL database (pg_dump -Fc).")
    name: str = Field(description="Name of this source within the plan.")
    host: str = Field(description="Inventory host the database runs on.")
    database: str = Field(description="Database name.")
    port: int = Field(default=5432, ge=1, le=65535, description="PostgreSQL port.")
    tables: list[str] = Field(
        default_factory=list,
        description="Tables whose row counts are recorded at backup time and compared after "
        "restore.",
    )
    freshness: Freshness | None = Field(
        default=None, description="Newest row timestamp, for the achieved RPO in the restored data."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _name(value)

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if not DATABASE.match(value):
            raise ValueError("must be a database name (letters, digits, '_', '-')")
        return value

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        for table in value:
            if not IDENTIFIER.match(table):
                raise ValueError(f"'{table}' is not a SQL identifier (schema.table allowed)")
        return value


class FilesSource(_Model):
    kind: Literal["files"] = Field(description="File trees on a host (a tar stream).")
    name: str = Field(description="Name of this source within the plan.")
    host: str = Field(description="Inventory host the files are on.")
    paths: list[str] = Field(min_length=1, description="Absolute paths backed up.")
    sample: int = Field(
        default=20, ge=0, le=10000, description="How many random files' hashes are recorded."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _name(value)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_absolute(path) for path in value]


Source = Annotated[PostgresSource | FilesSource, Field(discriminator="kind")]


class S3Repository(_Model):
    endpoint: str = Field(description="S3 endpoint URL, e.g. https://s3.example.lv.")
    bucket: str = Field(description="Bucket name (created with Object Lock and versioning).")
    prefix: str = Field(default="", description="Key prefix inside the bucket.")
    region: str = Field(default="us-east-1", description="Region name the server expects.")
    access_key_env: EnvName | None = Field(
        default=None, description="Variable with the access key id."
    )
    access_key_file: str | None = Field(default=None, description="File with the access key id.")
    access_key_credential: CredentialName | None = Field(
        default=None, description="systemd credential with the access key id."
    )
    secret_key_env: EnvName | None = Field(
        default=None, description="Variable with the secret key."
    )
    secret_key_file: str | None = Field(default=None, description="File with the secret key.")
    secret_key_credential: CredentialName | None = Field(
        default=None, description="systemd credential with the secret key."
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="Object Lock default retention (COMPLIANCE), days."
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError("must be http(s)://host[:port]")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _sources(self) -> S3Repository:
        check_secret_source(self, "access_key", required=True)
        check_secret_source(self, "secret_key", required=True)
        return self


class Repository(_Model):
    path: str | None = Field(
        default=None,
        description="Local repository on the backup host (where cityguard runs); relative "
        "paths are under the site's state directory.",
    )
    s3: S3Repository | None = Field(default=None, description="An S3 bucket with Object Lock.")
    password_env: EnvName | None = Field(default=None, description="Variable with the password.")
    password_file: str | None = Field(default=None, description="File with the password.")
    password_credential: CredentialName | None = Field(
        default=None, description="systemd credential with the password."
    )
    check_subset: str = Field(
        default="10%", description="restic check --read-data-subset at each drill (e.g. 10%, 1/5)."
    )

    @field_validator("check_subset")
    @classmethod
    def _subset(cls, value: str) -> str:
        if not SUBSET.match(value):
            raise ValueError("must be a percentage (10%), n/m (1/5) or a size (500M)")
        return value

    @model_validator(mode="after")
    def _one(self) -> Repository:
        if (self.path is None) == (self.s3 is None):
            raise ValueError("give exactly one of path, s3")
        check_secret_source(self, "password", required=True)
        return self


class Retention(_Model):
    keep_last: int | None = Field(default=None, ge=1, description="Newest snapshots kept.")
    keep_daily: int | None = Field(default=None, ge=1, description="Daily snapshots kept.")
    keep_weekly: int | None = Field(default=None, ge=1, description="Weekly snapshots kept.")
    keep_monthly: int | None = Field(default=None, ge=1, description="Monthly snapshots kept.")
    keep_yearly: int | None = Field(default=None, ge=1, description="Yearly snapshots kept.")

    @model_validator(mode="after")
    def _some(self) -> Retention:
        if not self.keep():
            raise ValueError("keep at least something (keep_last, keep_daily, ...)")
        return self

    def keep(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


#: When the off-site bucket job of an S3 plan runs unless its plan says otherwise: twice a day.
#: Each run pushes the current objects' COMPLIANCE retention to now + ``retention_days``, so the
#: runs must come less than ``retention_days`` apart, and the shortest retention a plan may have
#: is one day; 12 hours apart leaves half a day for the timer's random delay, a long run and a
#: late start.
DEFAULT_OFFSITE_SCHEDULE = "*-*-* 00/12:00:00"


class Schedule(_Model):
    backup: str = Field(description="systemd OnCalendar expression for backups.")
    drill: str = Field(description="systemd OnCalendar expression for drills.")
    offsite: str | None = Field(
        default=None,
        description="systemd OnCalendar expression for the off-site bucket job (`cityguard "
        "backup offsite SYSTEM --setup`), S3 repositories only; default twice a day "
        f"({DEFAULT_OFFSITE_SCHEDULE}). Runs must come less than retention_days apart (a "
        "schedule whose runs are further apart, or end, is refused).",
    )


#: How long one backup of a system may take unless its plan says otherwise.
DEFAULT_BACKUP_TIMEOUT = "6h"
BACKUP_TIMEOUT_MIN_S = 10
BACKUP_TIMEOUT_MAX_S = 7 * 86400


class Restore(_Model):
    target: str = Field(description="Scratch host (inventory) the drill restores onto.")
    directory: str = Field(
        default="/srv/cityguard-drill", description="Directory on it for restored files."
    )
    min_free_mb: int = Field(default=1024, ge=1, description="Free disk the target must have.")
    isolation_ports: list[int] = Field(
        default_factory=lambda: [22, 80, 443],
        description="Ports of the source hosts that must be unreachable from the target "
        "(besides each database's port).",
    )

    @field_validator("directory")
    @classmethod
    def _dir(cls, value: str) -> str:
        value = _absolute(value)
        if value in ("/", "/etc", "/usr", "/var", "/srv", "/home", "/root", "/boot"):
            raise ValueError("must be a directory of its own, not a system directory")
        return value


class SqlStep(_Model):
    kind: Literal["sql"] = Field(description="A SQL query with its expected result.")
    source: str = Field(description="The postgresql source whose restored database is queried.")
    query: str = Field(min_length=1, description="The query (one value, or rows joined by '|').")
    expect: str = Field(description="The expected output, compared as text after trimming.")


class RowCountsStep(_Model):
    kind: Literal["row-counts"] = Field(description="Row counts equal those at backup time.")
    source: str = Field(description="The postgresql source.")


class FileHashesStep(_Model):
    kind: Literal["file-hashes"] = Field(
        description="The files sampled at backup time have the same SHA-256 after restore."
    )
    source: str = Field(description="The files source.")


class TcpStep(_Model):
    kind: Literal["tcp"] = Field(description="A TCP port of the restored service answers.")
    port: int = Field(ge=1, le=65535, description="Port on the restore target.")


class HttpStep(_Model):
    kind: Literal["http"] = Field(description="An HTTP request to the restored service.")
    port: int = Field(ge=1, le=65535, description="Port on the restore target.")
    path: str = Field(default="/", description="Request path.")
    status: int = Field(default=200, description="Expected status code.")


VerifyStep = Annotated[
    SqlStep | RowCountsStep | FileHashesStep | TcpStep | HttpStep, Field(discriminator="kind")
]


class PlanFile(_Model):
    """One information system's backup and drill plan."""

    system: str = Field(description="The information system's name (the evidence subject).")
    title: str = Field(min_length=1, description="Human title.")
    owner: str = Field(min_length=2, description="Who answers for its recovery (name or role).")
    description: str = Field(min_length=1, description="What the system is, for auditors.")
    targets: Targets = Field(description="RPO and RTO targets.")
    sources: list[Source] = Field(min_length=1, description="What is backed up.")
    repository: Repository = Field(description="The restic repository.")
    retention: Retention = Field(description="How many snapshots are kept.")
    schedule: Schedule = Field(description="When backups and drills run.")
    backup_timeout: str = Field(
        default=DEFAULT_BACKUP_TIMEOUT,
        description="The longest one backup may take (e.g. 6h): restic is stopped then and the "
        "backup fails. A repository that stops answering would otherwise hold it for about 15 "
        "minutes per request.",
    )
    backup_runs_on: Literal["control-node", "source-host"] = Field(
        default="control-node",
        description="Where scheduled backups run: the control node pulls the sources over SSH "
        "(the sources hold no repository password), or the source host pushes to an S3 "
        "repository (playbooks/backup.yml, deployed by `cityguard backup deploy`).",
    )
    restore: Restore = Field(description="Where a drill restores to.")
    verify: list[VerifyStep] = Field(min_length=1, description="How a restore is proven.")

    @field_validator("system")
    @classmethod
    def _check_system(cls, value: str) -> str:
        return _name(value)

    @field_validator("backup_timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        seconds = parse_duration(value)
        if not BACKUP_TIMEOUT_MIN_S <= seconds <= BACKUP_TIMEOUT_MAX_S:
            raise ValueError(f"'{value}' must be between 10s and 7d")
        return value

    @property
    def backup_timeout_s(self) -> int:
        return parse_duration(self.backup_timeout)


@dataclass(frozen=True)
class Plan:
    """A validated plan with its file, secrets as references and the repository resolved."""

    spec: PlanFile
    path: Path
    display: str
    password: SecretRef
    repository_location: str
    s3_access_key: SecretRef | None = None
    s3_secret_key: SecretRef | None = None

    @property
    def system(self) -> str:
        return self.spec.system

    def source(self, name: str) -> PostgresSource | FilesSource:
        for source in self.spec.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    @property
    def source_hosts(self) -> list[str]:
        return sorted({source.host for source in self.spec.sources})

    @property
    def pushed_from(self) -> str | None:
        """The source host that runs this system's backups itself (``backup_runs_on:
        source-host``, one host by validation), or None: the control node pulls them."""
        return self.source_hosts[0] if self.spec.backup_runs_on == "source-host" else None

    @property
    def offsite_schedule(self) -> str | None:
        """When the off-site bucket job runs (``schedule.offsite``, or the default), or None:
        only an S3 repository has one."""
        return _offsite_schedule(self.spec)


def _offsite_schedule(spec: PlanFile) -> str | None:
    if spec.repository.s3 is None:
        return None
    return spec.schedule.offsite or DEFAULT_OFFSITE_SCHEDULE


CalendarCheck = Callable[[str], str | None]
"""Returns why a systemd calendar expression is invalid, or None."""

CalendarGap = Callable[[str], timedelta | None]
"""Returns the longest time between consecutive runs of a valid systemd calendar expression, or
None when its runs end (a one-off date, a past one, a last year)."""


def load_plans(
    files: Sequence[tuple[Path, str]],
    inventory: Inventory,
    *,
    state_dir: Path,
    scratch_group: str,
    calendar_check: CalendarCheck | None = None,
    calendar_gap: CalendarGap | None = None,
) -> list[Plan]:
    """Every plan of ``files`` ((path, how to name it)), or ConfigError with all problems.

    ``calendar_check`` validates the schedules; ``calendar_gap`` measures the off-site one of S3
    plans (once valid), whose runs must come less than ``retention_days`` apart."""
    problems: list[ConfigProblem] = []
    loaded: list[tuple[YamlDocument, PlanFile, Path]] = []
    for path, display in files:
        try:
            doc = load_yaml_file(path, display)
        except ConfigError as error:
            problems += error.problems
            continue
        try:
            loaded.append((doc, PlanFile.model_validate(doc.data), path))
        except ValidationError as exc:
            problems += problems_from_validation(exc, doc.file, doc.lines, PlanFile)
    source_hosts: dict[str, str] = {}
    for _, spec, _ in loaded:
        for source in spec.sources:
            source_hosts.setdefault(source.host, spec.system)
    systems: dict[str, str] = {}
    plans: list[Plan] = []
    for doc, spec, path in loaded:
        found = _cross_problems(doc, spec, inventory, source_hosts, scratch_group)
        if spec.system in systems:
            found.append(doc.problem(("system",), f"also the system of {systems[spec.system]}"))
        systems.setdefault(spec.system, doc.file)
        found += _schedule_problems(doc, spec, calendar_check, calendar_gap)
        problems += found
        if not found:
            plans.append(_resolve(doc, spec, path, state_dir))
    if problems:
        raise ConfigError(problems)
    return plans


def _schedule_problems(
    doc: YamlDocument,
    spec: PlanFile,
    calendar_check: CalendarCheck | None,
    calendar_gap: CalendarGap | None,
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    invalid: set[str] = set()
    if calendar_check is not None:
        for key in ("backup", "drill", "offsite"):
            expression = getattr(spec.schedule, key)
            why = calendar_check(expression) if expression is not None else None
            if why:
                problems.append(doc.problem(("schedule", key), why))
                invalid.add(key)
    s3 = spec.repository.s3
    if calendar_gap is None or s3 is None or "offsite" in invalid:
        return problems
    offsite = spec.schedule.offsite or DEFAULT_OFFSITE_SCHEDULE
    retention = timedelta(days=s3.retention_days)
    gap = calendar_gap(offsite)
    if gap is None:
        why = (
            "does not run forever (systemd-analyze lists a last run, or none): current objects "
            "would lose their lock once it stops"
        )
    elif gap >= retention:
        longer = "longer than" if gap > retention else "as long as"
        why = (
            f"runs up to {_span(gap)} apart, {longer} repository.s3.retention_days "
            f"({s3.retention_days}): current objects would lose their lock between runs"
        )
    else:
        return problems
    if spec.schedule.offsite is None:  # the default: locate the value the plan chose
        why = f"the default schedule.offsite ({offsite}) {why}; give one whose runs come closer"
        problems.append(doc.problem(("repository", "s3", "retention_days"), why))
    else:
        problems.append(doc.problem(("schedule", "offsite"), why))
    return problems


def _span(gap: timedelta) -> str:
    """``9 days``, ``1 day 12 hours``, ``45 minutes``: days, hours and minutes that are not 0."""
    minutes = int(gap.total_seconds() // 60)
    parts = zip(
        (minutes // 1440, minutes // 60 % 24, minutes % 60), ("day", "hour", "minute"), strict=True
    )
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(words) or "under a minute"


def _cross_problems(
    doc: YamlDocument,
    spec: PlanFile,
    inventory: Inventory,
    source_hosts: dict[str, str],
    scratch_group: str,
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    known = set(inventory.host_names())
    names: set[str] = set()
    for index, source in enumerate(spec.sources):
        if source.host not in known:
            problems.append(
                doc.problem(("sources", index, "host"), f"no host '{source.host}' in the inventory")
            )
        if source.name in names:
            problems.append(doc.problem(("sources", index, "name"), "another source has this name"))
        names.add(source.name)
    target = spec.restore.target
    where: KeyPath = ("restore", "target")
    if target not in known:
        problems.append(doc.problem(where, f"no host '{target}' in the inventory"))
    else:
        if target in source_hosts:
            problems.append(
                doc.problem(
                    where,
                    f"'{target}' is a source host (of {source_hosts[target]}): a drill never "
                    "restores onto a source host",
                )
            )
        if target not in inventory.groups.get(scratch_group, []):
            problems.append(
                doc.problem(where, f"'{target}' is not in the scratch group '{scratch_group}'")
            )
    if spec.backup_runs_on == "source-host":
        problems += _push_problems(doc, spec)
    if spec.schedule.offsite is not None and spec.repository.s3 is None:
        problems.append(
            doc.problem(
                ("schedule", "offsite"),
                "only an S3 repository (repository.s3) has an off-site bucket job to schedule",
            )
        )
    kinds = {source.name: source.kind for source in spec.sources}
    wanted = {"sql": "postgresql", "row-counts": "postgresql", "file-hashes": "files"}
    for index, step in enumerate(spec.verify):
        if isinstance(step, TcpStep | HttpStep):
            continue
        need = wanted[step.kind]
        name = step.source
        if name not in kinds:
            problems.append(doc.problem(("verify", index, "source"), f"no source named '{name}'"))
        elif kinds[name] != need:
            problems.append(
                doc.problem(("verify", index, "source"), f"'{name}' is not a {need} source")
            )
        elif step.kind == "row-counts" and not _tables_of(spec, name):
            problems.append(
                doc.problem(
                    ("verify", index, "source"), f"source '{name}' lists no tables to count"
                )
            )
    return problems


def _push_problems(doc: YamlDocument, spec: PlanFile) -> list[ConfigProblem]:
    """A source host can push only its own sources, and only to a repository it can reach."""
    problems: list[ConfigProblem] = []
    where: KeyPath = ("backup_runs_on",)
    hosts = sorted({source.host for source in spec.sources})
    if len(hosts) > 1:
        problems.append(
            doc.problem(
                where,
                f"'source-host' needs every source on one host; they are on {', '.join(hosts)}",
            )
        )
    s3 = spec.repository.s3
    if s3 is None:
        problems.append(
            doc.problem(
                where,
                "'source-host' needs repository.s3: a source host cannot reach a local path "
                "on the backup host",
            )
        )
    elif _is_loopback(s3.endpoint):
        problems.append(
            doc.problem(
                ("repository", "s3", "endpoint"),
                f"{s3.endpoint} is the loopback address, which on the source host is not the "
                "S3 server; give an address the source host reaches",
            )
        )
    return problems


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in LOOPBACK_NAMES


def _tables_of(spec: PlanFile, name: str) -> list[str]:
    for source in spec.sources:
        if source.name == name and isinstance(source, PostgresSource):
            return source.tables
    return []


def _resolve(doc: YamlDocument, spec: PlanFile, path: Path, state_dir: Path) -> Plan:
    repo = spec.repository
    password = make_secret_ref(
        repo, "password", root=path.parent, origin=_origin(doc, "password", repo)
    )
    assert password is not None  # the model requires exactly one
    access = secret = None
    if repo.s3 is not None:
        s3 = repo.s3
        location = f"s3:{s3.endpoint}/{s3.bucket}" + (
            f"/{s3.prefix.strip('/')}" if s3.prefix.strip("/") else ""
        )
        access = make_secret_ref(
            s3,
            "access_key",
            root=path.parent,
            origin=_origin(doc, "access_key", s3, ("repository", "s3")),
        )
        secret = make_secret_ref(
            s3,
            "secret_key",
            root=path.parent,
            origin=_origin(doc, "secret_key", s3, ("repository", "s3")),
        )
    else:
        assert repo.path is not None
        local = Path(repo.path)
        location = str(local if local.is_absolute() else state_dir / "restic" / local)
    return Plan(spec, path, doc.file, password, location, access, secret)


def _origin(
    doc: YamlDocument, name: str, settings: BaseModel, at: KeyPath = ("repository",)
) -> str:
    for suffix in ("_env", "_file", "_credential"):
        if getattr(settings, f"{name}{suffix}", None) is not None:
            problem = doc.problem((*at, f"{name}{suffix}"), "")
            return f"{problem.file}:{problem.line}: {problem.key_path}"
    return doc.file
