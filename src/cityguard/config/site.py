"""The site file: its schema (pydantic) and the resolved ``Site`` the rest of cityguard uses.

The schema forbids unknown keys everywhere because a misspelt optional key (``evidense:``)
would otherwise be ignored and a city would silently run without the setting it asked for.
Secrets are never written here, only referenced by environment variable or file, because site
files live in version control and are shown to auditors.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityguard.config.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from cityguard.config.inventory import Inventory

SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(value: str | None) -> str | None:
    if value is not None and not ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits, '_')")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Section):
    """Who the site is."""

    name: str = Field(description="Short machine name; names the state directory.")
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


class Ipv6Settings(_Section):
    """IPv6 readiness settings."""

    plan: str | None = Field(
        default=None, min_length=1, description="Addressing plan file, relative to the site file."
    )


class DrillSettings(_Section):
    """Disaster-recovery drill settings."""

    plans: list[str] = Field(
        default_factory=list, description="Drill plan files, relative to the site file."
    )


class KeycloakSettings(_Section):
    """The Keycloak instance that brokers eIDAS logins; its admin secret is only referenced."""

    url: str = Field(description="Base http(s) URL of Keycloak.")
    realm: str = Field(min_length=1, description="Realm holding the eIDAS identity provider.")
    admin_user: str = Field(min_length=1, description="Keycloak admin user name.")
    admin_password_env: str | None = Field(
        default=None, description="Environment variable holding the admin password."
    )
    admin_password_file: str | None = Field(
        default=None,
        min_length=1,
        description="File holding the admin password, relative to the site file.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("admin_password_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        return _env_name(value)

    @model_validator(mode="after")
    def _one_secret_source(self) -> KeycloakSettings:
        if (self.admin_password_env is None) == (self.admin_password_file is None):
            raise ValueError("give exactly one of admin_password_env or admin_password_file")
        return self

    def read_admin_password(self) -> str:
        """Fetch the admin password now, from the environment or the file.

        Read at call time, never at load time, so the secret is not held in the site object
        and a rotated password is picked up without reloading.
        """
        if self.admin_password_env is not None:
            value = os.environ.get(self.admin_password_env, "")
            if not value:
                raise ConfigError(
                    [_secret_problem("admin_password_env", f"{self.admin_password_env} is unset")]
                )
            return value
        assert self.admin_password_file is not None  # guaranteed by _one_secret_source
        try:
            return Path(self.admin_password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            message = f"cannot read {self.admin_password_file}: {exc.strerror}"
            raise ConfigError([_secret_problem("admin_password_file", message)]) from None


def _secret_problem(key: str, message: str) -> ConfigProblem:
    return ConfigProblem("", None, f"eidas.keycloak.{key}", message)


class EidasSettings(_Section):
    """eIDAS reachability settings."""

    keycloak: KeycloakSettings = Field(description="Keycloak that brokers eIDAS logins.")


class EvidenceSettings(_Section):
    """Where evidence is stored."""

    dsn_env: str | None = Field(
        default=None,
        description="Environment variable holding a PostgreSQL DSN; unset means SQLite.",
    )

    @field_validator("dsn_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        return _env_name(value)


class Waiver(_Section):
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


class SiteFile(_Section):
    """The whole site file as written by ops (paths still relative)."""

    site: SiteInfo = Field(description="Who the site is.")
    inventory: str = Field(
        min_length=1, description="Ansible YAML inventory, relative to the site file."
    )
    baseline: str = Field(description="Baseline name: policies/baselines/<name>.yml.")
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Control parameter overrides: control id -> mapping."
    )
    ipv6: Ipv6Settings | None = Field(default=None, description="IPv6 readiness settings.")
    drill: DrillSettings | None = Field(default=None, description="DR drill settings.")
    eidas: EidasSettings | None = Field(default=None, description="eIDAS settings.")
    evidence: EvidenceSettings | None = Field(default=None, description="Evidence storage.")
    waivers: list[Waiver] = Field(
        default_factory=list, description="Approved exceptions; expired ones count as failures."
    )

    @field_validator("baseline")
    @classmethod
    def _check_baseline(cls, value: str) -> str:
        if not BASELINE_NAME.match(value):
            raise ValueError("must be a baseline name (letters, digits, '-', '_'), not a path")
        return value


@dataclass(frozen=True)
class Site:
    """A validated site with every path resolved: what commands work with.

    Secrets and the evidence DSN are not stored; they are read when needed (``evidence_dsn``,
    ``KeycloakSettings.read_admin_password``) so they never end up in a repr or a log.
    """

    name: str
    title: str
    contact: str | None
    path: Path
    root: Path
    inventory_path: Path
    baseline: str
    baseline_path: Path
    parameters: dict[str, dict[str, Any]]
    ipv6_plan: Path | None
    drill_plans: tuple[Path, ...]
    keycloak: KeycloakSettings | None
    evidence_dsn_env: str | None
    waivers: tuple[Waiver, ...]
    inventory: Inventory = field(repr=False)
    state_dir: Path
    content_dir: Path

    def evidence_dsn(self) -> str | None:
        """The PostgreSQL DSN from the configured variable, or None to use SQLite."""
        if self.evidence_dsn_env is None:
            return None
        return os.environ.get(self.evidence_dsn_env) or None
