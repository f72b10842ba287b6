"""The site file's ``eidas`` section: where Keycloak is, who administers it, which realm file.

The admin password is referenced (``admin_password_env``, ``_file`` or ``_credential``) and read
only when a command talks to Keycloak. cityguard talks to the admin API on loopback only: the
broker's admin interface is never exposed, and a test or the demo never reaches another host.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from cityguard.config.errors import ConfigProblem
from cityguard.config.scope import SectionScope
from cityguard.config.site import (
    BASELINE_NAME,
    CREDENTIAL_NAME,
    ENV_NAME,
    CredentialName,
    EnvName,
    SiteSection,
    check_secret_source,
)

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is a loopback name or address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EidasSettings(SiteSection):
    """The eIDAS broker: a Keycloak on loopback and the realm file that describes it."""

    url: str = Field(
        description="Keycloak's base URL, on loopback only (e.g. http://127.0.0.1:8080)."
    )
    admin_realm: str = Field(
        default="master", min_length=1, description="Realm the admin user logs in to."
    )
    admin_user: str = Field(min_length=1, description="Keycloak admin user name.")
    admin_password_env: EnvName | None = Field(
        default=None,
        description="Environment variable holding the admin password.",
        json_schema_extra={"pattern": ENV_NAME.pattern},
    )
    admin_password_file: str | None = Field(
        default=None,
        min_length=1,
        description="File holding the admin password (relative to the site file, or absolute).",
    )
    admin_password_credential: CredentialName | None = Field(
        default=None,
        description="systemd credential (LoadCredential=) holding the admin password.",
        json_schema_extra={"pattern": CREDENTIAL_NAME.pattern},
    )
    realm_file: str = Field(
        min_length=1,
        description="The realm file (eIDAS broker realm as code), relative to the site file.",
    )
    baseline: str = Field(
        default="eidas-broker",
        description="Baseline of realm controls verify judges against: "
        "policies/baselines/<name>.yml.",
        json_schema_extra={"pattern": BASELINE_NAME.pattern},
    )
    timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of one admin API call, in seconds."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not is_loopback_url(value):
            raise ValueError(
                "must be an http:// or https:// URL on loopback (127.0.0.1, ::1, localhost)"
            )
        return value.rstrip("/")

    @field_validator("baseline")
    @classmethod
    def _check_baseline(cls, value: str) -> str:
        if not BASELINE_NAME.match(value):
            raise ValueError("must be a baseline name (letters, digits, '-', '_'), not a path")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> EidasSettings:
        check_secret_source(self, "admin_password", required=True)
        return self

    def check(self, scope: SectionScope) -> list[ConfigProblem]:
        return scope.referenced_file(("realm_file",), self.realm_file)

    def realm_path(self, site_root: Path) -> Path:
        return site_root / self.realm_file
