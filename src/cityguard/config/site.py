"""The site file: its models (pydantic) and the resolved ``Site`` the rest of cityguard uses.

The site file model is a base, ``SiteFile`` (``version``, ``site``, ``inventory``, ``evidence``
and the hardening keys ``baseline``, ``parameters``, ``waivers``, which every run is judged
against), plus one optional section per area, each a ``SiteSection`` registered in
``cityguard.config.sections`` (whose docstring says how an area adds one). ``site_file_model``
composes them; the JSON Schema (``cityguard schema site``) is generated from the result.

The models forbid unknown keys everywhere because a misspelt optional key (``evidense:``)
would otherwise be ignored and a city would silently run without the setting it asked for.
Secrets are never written here, only referenced (``*_env``, ``*_file``, ``*_credential``),
because site files live in version control and are shown to auditors.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from cityguard.config.errors import ConfigProblem, KeyPath, format_key_path, line_for
from cityguard.config.scope import SectionScope
from cityguard.config.sections import SectionSpec
from cityguard.core.secrets import (
    SecretError,
    SecretRef,
    SecretSource,
    dsn_problem,
    register_dsn,
)

if TYPE_CHECKING:
    from cityguard.config.inventory import Inventory

SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:-]*$")

#: Site file versions this cityguard reads; a file states its version in ``version:``.
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
SITE_FILE_VERSION = SUPPORTED_VERSIONS[-1]

#: The keys of one secret reference: ``<name>_env``, ``<name>_file``, ``<name>_credential``.
SECRET_SUFFIXES = ("_env", "_file", "_credential")

SectionT = TypeVar("SectionT", bound="SiteSection")


def env_name(value: str | None) -> str | None:
    """Field validator helper: an environment variable name, or None."""
    if value is not None and not ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits, '_')")
    return value


def credential_name(value: str | None) -> str | None:
    """Field validator helper: a systemd credential name (LoadCredential=), or None."""
    if value is not None and (not CREDENTIAL_NAME.match(value) or value in (".", "..")):
        raise ValueError("must be a systemd credential name (letters, digits, '_.@:-', no '/')")
    return value


#: The type of a secret's ``<name>_env`` key (``EnvName | None``): the name is checked where the
#: key is written, so every model with a secret reference refuses a bad one in the same words.
EnvName = Annotated[str, AfterValidator(env_name)]

#: The type of a secret's ``<name>_credential`` key (``CredentialName | None``), likewise.
CredentialName = Annotated[str, AfterValidator(credential_name)]


def check_secret_source(settings: BaseModel, name: str, *, required: bool) -> None:
    """Model validator helper: at most one (or, if required, exactly one) of the secret's keys."""
    keys = [f"{name}{suffix}" for suffix in SECRET_SUFFIXES]
    given = [key for key in keys if getattr(settings, key, None) is not None]
    if len(given) > 1 or (required and not given):
        which = "exactly one" if required else "only one"
        raise ValueError(f"give {which} of {', '.join(keys)}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSection(_Model):
    """Base of an area's section of the site file (see ``cityguard.config.sections``).

    Unknown keys are refused and the model is frozen. Give every field a description: the site
    schema is generated from the models and every key in it must say what it is for.
    """

    def check(self, scope: SectionScope) -> list[ConfigProblem]:
        """Rules beyond the section's shape (referenced files, inventory names); none by default.

        Runs in the logical pass, after every section had the right shape, and its problems are
        reported with all the others.
        """
        return []

    def hostvars(self, site: Site) -> dict[str, dict[str, Any]]:
        """Per-host variables the area gives every run's inventory (harden, check); none by
        default.

        ``cityguard.workspace`` merges them into the inventory the playbooks and the checks
        read, so config never imports an area. Keys are host names of ``site.inventory``; name
        the variables after the area (``cityguard_<area>``). Raise ``ConfigError`` (located
        lines) when the files the section names cannot give them.
        """
        return {}

    def networks(self, site: Site) -> dict[str, tuple[str, ...]]:
        """The network segments each host sits on, in order (the first carries its management
        address; a router sits on several); none by default.

        The lab builds one bridge per segment from it, so a lab is laid out as the site is.
        Keys are host names of ``site.inventory``.
        """
        return {}


class SiteInfo(_Model):
    """Who the site is."""

    name: str = Field(
        description="Short machine name: lowercase letters, digits and '-'; names the state "
        "directory.",
        json_schema_extra={"pattern": SITE_NAME.pattern},
    )
    title: str = Field(min_length=1, description="Human title shown in reports.")
    contact: str | None = Field(default=None, description="Who to contact about this site.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not SITE_NAME.match(value):
            raise ValueError(
                "must be 2-63 characters of lowercase letters, digits and '-', "
                "starting with a letter or digit"
            )
        return value


class EvidenceSettings(_Model):
    """Where evidence is stored: PostgreSQL when a DSN is referenced and set, else SQLite.

    The DSN (it usually carries a password) is referenced, never written: by environment
    variable (unset means SQLite under the state directory), by file, or by systemd credential.
    """

    dsn_env: EnvName | None = Field(
        default=None,
        description="Environment variable holding a PostgreSQL DSN; unset means SQLite.",
        json_schema_extra={"pattern": ENV_NAME.pattern},
    )
    dsn_file: str | None = Field(
        default=None,
        min_length=1,
        description="File holding a PostgreSQL DSN (relative to the site file, or absolute); "
        "must exist.",
    )
    dsn_credential: CredentialName | None = Field(
        default=None,
        description="systemd credential (LoadCredential=) holding a PostgreSQL DSN; must exist.",
        json_schema_extra={"pattern": CREDENTIAL_NAME.pattern},
    )

    @model_validator(mode="after")
    def _one_source(self) -> EvidenceSettings:
        check_secret_source(self, "dsn", required=False)
        return self


class Waiver(_Model):
    """An approved, time-limited exception: the control still runs and its value is kept."""

    control: str = Field(description="The control id waived, e.g. CG-SSH-003.")
    hosts: list[str] = Field(
        min_length=1, description="Host or group names the waiver covers (e.g. [db] or [db1])."
    )
    justification: str = Field(
        min_length=10, description="Why the control cannot be met, for the auditor."
    )
    approver: str = Field(min_length=2, description="Who accepted the risk (name or role).")
    expires: date = Field(description="Last day the waiver is valid (YYYY-MM-DD).")


class SiteFile(_Model):
    """A cityguard site file: one city's servers, the baseline they must meet, and settings."""

    version: Literal[1] = Field(
        description="Version of the site file format; this cityguard reads version 1."
    )
    site: SiteInfo = Field(description="Who the site is: machine name, title, contact.")
    inventory: str = Field(
        min_length=1, description="Ansible YAML inventory, relative to the site file."
    )
    baseline: str = Field(
        description="Security baseline every server must meet: policies/baselines/<name>.yml.",
        json_schema_extra={"pattern": BASELINE_NAME.pattern},
    )
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Overrides of control parameters: control id -> parameter -> value.",
    )
    evidence: EvidenceSettings | None = Field(
        default=None, description="Where evidence is stored (default: SQLite)."
    )
    waivers: list[Waiver] = Field(
        default_factory=list, description="Approved exceptions; expired ones count as failures."
    )

    @field_validator("baseline")
    @classmethod
    def _check_baseline(cls, value: str) -> str:
        if not BASELINE_NAME.match(value):
            raise ValueError("must be a baseline name (letters, digits, '-', '_'), not a path")
        return value

    def sections(self) -> dict[str, SiteSection]:
        """The area sections present in this file, by key."""
        return {
            key: value
            for key in type(self).model_fields
            if isinstance(value := getattr(self, key), SiteSection)
        }


def site_file_model(sections: Sequence[SectionSpec] = ()) -> type[SiteFile]:
    """The site file model: the base plus one optional key per area section."""
    return _compose(tuple(sections))


@functools.lru_cache(maxsize=16)
def _compose(sections: tuple[SectionSpec, ...]) -> type[SiteFile]:
    if not sections:
        return SiteFile
    fields: dict[str, Any] = {}
    for spec in sections:
        section = spec.load()
        if not issubclass(section, SiteSection):
            raise TypeError(f"site section {spec.key!r}: {section!r} is not a SiteSection model")
        fields[spec.key] = (section | None, Field(default=None, description=spec.description))
    model: type[SiteFile] = create_model(
        "SiteFile", __base__=SiteFile, __doc__=SiteFile.__doc__, **fields
    )
    return model


def locate(file: str, lines: Mapping[KeyPath, int], path: KeyPath) -> str:
    """``site.yml:52: evidence.dsn_env``: the file, line and key path of ``path``."""
    line = line_for(lines, path)
    place = f"{file}:{line}" if line is not None else file
    return f"{place}: {format_key_path(path)}"


def secret_key(settings: BaseModel, name: str) -> str | None:
    """Which of ``<name>_env``, ``<name>_file``, ``<name>_credential`` is set, if any."""
    for suffix in SECRET_SUFFIXES:
        if getattr(settings, f"{name}{suffix}", None) is not None:
            return f"{name}{suffix}"
    return None


def make_secret_ref(
    settings: BaseModel, name: str, *, root: Path, origin: str = ""
) -> SecretRef | None:
    """The reference written as ``<name>_env``, ``<name>_file`` or ``<name>_credential``.

    A file is relative to ``root``, the site file's directory. ``origin`` says where the key
    is written (``site.yml:52: evidence.dsn_env``) and starts every error about the secret.
    """
    key = secret_key(settings, name)
    if key is None:
        return None
    value = str(getattr(settings, key))
    if key.endswith("_env"):
        return SecretRef.env(value, origin)
    if key.endswith("_file"):
        return SecretRef.file(root / value, origin)
    return SecretRef.credential(value, origin)


@dataclass(frozen=True)
class Site:
    """A validated site with every path resolved: what commands work with.

    Secrets (the evidence DSN, an area's passwords) are not stored, only referenced; they are
    read when needed (``evidence_dsn``, ``secret_ref(...).reveal()``) so they never end up in a
    repr or a log, and a rotated secret is picked up without reloading.
    """

    version: int
    name: str
    title: str
    contact: str | None
    path: Path
    root: Path
    inventory_path: Path
    baseline: str
    baseline_path: Path
    parameters: dict[str, dict[str, Any]]
    evidence_dsn_ref: SecretRef | None
    waivers: tuple[Waiver, ...]
    inventory: Inventory = field(repr=False)
    state_dir: Path
    content_dir: Path
    sections: Mapping[str, SiteSection] = field(default_factory=lambda: MappingProxyType({}))
    display: str = field(default="", repr=False)
    """The site file as the operator named it, for messages."""
    lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False, compare=False)

    def section(self, key: str, model: type[SectionT]) -> SectionT | None:
        """The area section at ``key``, or None when the site file has none."""
        value = self.sections.get(key)
        if value is None:
            return None
        if not isinstance(value, model):
            raise TypeError(f"site section {key!r} is a {type(value).__name__}, not {model}")
        return value

    def locate(self, path: KeyPath) -> str:
        """``site.yml:52: evidence.dsn_env``: where a key is, for messages about it."""
        return locate(self.display or str(self.path), self.lines, path)

    def secret_ref(self, section: KeyPath, settings: BaseModel, name: str) -> SecretRef | None:
        """The secret ``name`` of the settings at ``section``, located for its error messages.

        E.g. ``site.secret_ref(("eidas",), eidas, "admin_password")`` for the keys
        ``admin_password_env``, ``admin_password_file``, ``admin_password_credential``.
        """
        key = secret_key(settings, name)
        if key is None:
            return None
        origin = self.locate((*section, key))
        return make_secret_ref(settings, name, root=self.root, origin=origin)

    def evidence_dsn(self) -> str | None:
        """The PostgreSQL DSN, read now; None (SQLite) when no DSN or an unset variable is named.

        A named file or credential must be there. The DSN and its password are registered for
        redaction. A URI whose password has an unescaped '@' or '/' is refused: libpq would
        read part of the password as the host name and show it in its errors.
        """
        ref = self.evidence_dsn_ref
        if ref is None or (ref.source is SecretSource.ENV and not ref.is_set()):
            return None
        dsn = ref.reveal()
        register_dsn(dsn)
        problem = dsn_problem(dsn)
        if problem is not None:
            raise SecretError(f"{ref.origin}: {problem}")
        return dsn
