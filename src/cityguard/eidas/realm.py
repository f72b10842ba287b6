"""The realm file: the e-services realm and its eIDAS identity provider, as code.

Loaded and validated before anything is sent to Keycloak, every problem at once as
``file:line: key: message`` (exit 2): Keycloak's admin API stores values it cannot use (an
unknown signature algorithm, a missing SSO URL) without complaint, so this is the guard.
Client secrets are referenced (``secret_env``, ``secret_file``, ``secret_credential``), never
written here. The node's entity id, SSO URL and signing certificate come from explicit keys or
the node's SAML metadata (node.py), read here too, so a command that loads the realm file
reads the metadata once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cityguard.config.errors import ConfigError, ConfigProblem, problems_from_validation
from cityguard.config.site import (
    CREDENTIAL_NAME,
    ENV_NAME,
    CredentialName,
    EnvName,
    check_secret_source,
    make_secret_ref,
)
from cityguard.config.yaml_lines import YamlDocument, load_yaml_file
from cityguard.core.secrets import SecretRef
from cityguard.eidas.node import Node, resolve_node
from cityguard.eidas.profiles import (
    ALLOWED_SIGNATURE_ALGORITHMS,
    ATTRIBUTES,
    DEFAULT_USER_ATTRIBUTES,
    KEYCLOAK_SIGNATURE_ALGORITHMS,
    MANDATORY_ATTRIBUTES,
    PROFILES,
)
from cityguard.eidas.uris import is_entity_id, secure_url, url_problem

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
USER_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_CLOCK_SKEW_S = 300


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _url(value: str, *, what: str = "URL") -> str:
    """An absolute https URL; plain http only on loopback (tests, the demo)."""
    if secure_url(value):
        return value
    raise ValueError(url_problem(what))


class Security(_Strict):
    """Realm security settings."""

    brute_force_protected: bool = Field(default=True, description="Brute-force detection on.")
    ssl_required: Literal["external", "all"] = Field(
        default="external", description="SSL required for external requests, or all."
    )
    login_events: bool = Field(default=True, description="Login events stored.")
    admin_events: bool = Field(default=True, description="Admin events stored, with details.")
    events_expiration_s: int = Field(
        default=90 * 24 * 3600, ge=3600, description="How long events are kept, in seconds."
    )


class Metadata(_Strict):
    """Where the node's SAML metadata is: a file or a URL, exactly one."""

    file: str | None = Field(
        default=None, min_length=1, description="Metadata file, relative to the realm file."
    )
    url: str | None = Field(
        default=None,
        description="Metadata URL (https://; http:// only on loopback), fetched once per command.",
    )

    @field_validator("url")
    @classmethod
    def _metadata_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, what="metadata URL")

    @model_validator(mode="after")
    def _one_source(self) -> Metadata:
        if (self.file is None) == (self.url is None):
            raise ValueError("give exactly one of file and url")
        return self


class IdentityProvider(_Strict):
    """The SAML identity provider for the eIDAS connector (or VPM).

    The node's entity id, SSO URL and signing certificate are given explicitly, by its
    metadata, or both (then they must agree): node.py works them out.
    """

    alias: str = Field(description="Keycloak alias of the identity provider.")
    display_name: str = Field(min_length=1, description="Name on the login page.")
    sp_entity_id: str = Field(description="The entity id Keycloak uses towards the node.")
    metadata: Metadata | None = Field(
        default=None,
        description="The node's SAML metadata (file or url): its entityID, SSO URL and "
        "signing certificates, instead of the three keys below (given too, they must agree).",
    )
    idp_entity_id: str | None = Field(
        default=None,
        description="The node's entity id (the assertions' Issuer); required without metadata.",
    )
    sso_url: str | None = Field(
        default=None,
        description="The node's single sign-on service URL (HTTP-POST); required without metadata.",
    )
    signing_certificate_file: str | None = Field(
        default=None,
        min_length=1,
        description="PEM file of the node's signing certificate, relative to the realm file; "
        "required without metadata (with it, the one certificate trusted).",
    )
    signature_algorithm: str = Field(
        default="RSA_SHA256_MGF1",
        description="Signature algorithm (RSA_SHA256_MGF1 or RSA_SHA512_MGF1).",
    )
    want_assertions_signed: bool = Field(default=True, description="Assertions must be signed.")
    want_assertions_encrypted: bool = Field(
        default=True, description="Assertions must be encrypted."
    )
    validate_signature: bool = Field(
        default=True, description="Validate the response signature with the certificate."
    )
    want_authn_requests_signed: bool = Field(
        default=True, description="Sign the AuthnRequests Keycloak sends."
    )
    requested_loa: Literal["low", "substantial", "high"] = Field(
        default="substantial", description="Level of assurance requested (comparison minimum)."
    )
    allowed_clock_skew_s: int = Field(
        default=30, ge=0, le=MAX_CLOCK_SKEW_S, description="Clock skew allowed, in seconds."
    )
    attributes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_USER_ATTRIBUTES),
        description="eIDAS attribute (friendly name) -> user attribute it is imported into.",
    )

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be 1-64 lowercase letters, digits, '-' or '_'")
        return value

    @field_validator("sso_url")
    @classmethod
    def _sso(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @field_validator("sp_entity_id", "idp_entity_id")
    @classmethod
    def _entity(cls, value: str | None) -> str | None:
        if value is not None and not is_entity_id(value):
            raise ValueError("must be an absolute URI (the SAML entity id)")
        return value

    @field_validator("signature_algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        allowed = ", ".join(ALLOWED_SIGNATURE_ALGORITHMS)
        if value not in KEYCLOAK_SIGNATURE_ALGORITHMS:
            raise ValueError(f"unknown signature algorithm {value!r} (eIDAS allows {allowed})")
        if value not in ALLOWED_SIGNATURE_ALGORITHMS:
            raise ValueError(f"{value} is not allowed by the eIDAS profile (allowed: {allowed})")
        return value

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(ATTRIBUTES))
        if unknown:
            raise ValueError(
                f"unknown eIDAS attribute {', '.join(unknown)} (known: {', '.join(ATTRIBUTES)})"
            )
        missing = [name for name in MANDATORY_ATTRIBUTES if name not in value]
        if missing:
            raise ValueError(f"mandatory eIDAS attribute not imported: {', '.join(missing)}")
        bad = [target for target in value.values() if not USER_ATTRIBUTE.match(target)]
        if bad:
            raise ValueError(f"not a user attribute name: {', '.join(bad)}")
        targets = list(value.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"user attribute imported twice: {', '.join(twice)}")
        return value


class Client(_Strict):
    """An OIDC client of a municipal e-service."""

    client_id: str = Field(description="The OIDC client id.")
    name: str = Field(min_length=1, description="Name shown to citizens.")
    redirect_uris: list[str] = Field(
        min_length=1, description="Exact redirect URIs (no wildcards)."
    )
    public: bool = Field(default=False, description="A public client (no secret; PKCE).")
    secret_env: EnvName | None = Field(
        default=None,
        description="Environment variable holding the client secret (confidential clients).",
        json_schema_extra={"pattern": ENV_NAME.pattern},
    )
    secret_file: str | None = Field(
        default=None, min_length=1, description="File holding the client secret."
    )
    secret_credential: CredentialName | None = Field(
        default=None,
        description="systemd credential holding the client secret.",
        json_schema_extra={"pattern": CREDENTIAL_NAME.pattern},
    )

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not CLIENT_ID.match(value):
            raise ValueError("must be letters, digits and '._:-' (at most 128)")
        return value

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, value: list[str]) -> list[str]:
        for uri in value:
            if "*" in uri:
                raise ValueError(f"redirect URI {uri!r} has a wildcard: give exact URIs")
            _url(uri, what="redirect URI")
        return value

    @model_validator(mode="after")
    def _secret(self) -> Client:
        check_secret_source(self, "secret", required=False)
        if self.public and any(
            getattr(self, f"secret{s}") is not None for s in ("_env", "_file", "_credential")
        ):
            raise ValueError("a public client has no secret")
        return self


class RealmFile(_Strict):
    """The eIDAS broker realm as code."""

    version: Literal[1] = Field(description="Version of the realm file format (1).")
    realm: str = Field(description="The e-services realm's name.")
    display_name: str = Field(min_length=1, description="The realm's display name.")
    profile: Literal["eidas-node", "vpm"] = Field(
        description="eidas-node (a direct eIDAS node) or vpm (Latvia's latvija.lv module)."
    )
    security: Security = Field(default_factory=Security, description="Realm security.")
    identity_provider: IdentityProvider = Field(description="The eIDAS SAML identity provider.")
    clients: list[Client] = Field(
        default_factory=list, description="OIDC clients of municipal e-services."
    )

    @field_validator("realm")
    @classmethod
    def _realm(cls, value: str) -> str:
        if not NAME.match(value) or value == "master":
            raise ValueError("must be 1-64 lowercase letters, digits, '-' or '_', not master")
        return value


@dataclass(frozen=True)
class RealmSpec:
    """A validated realm file with what it references read: what the commands work with."""

    file: str
    model: RealmFile
    node: Node  # the node's entity id, SSO URL, certificates (explicit or from metadata)
    client_secrets: dict[str, SecretRef]  # client id -> where its secret is

    @property
    def name(self) -> str:
        return self.model.realm

    @property
    def signing_certificate(self) -> str:
        """The PEM bodies (base64 DER), comma-separated, as Keycloak stores them."""
        return self.node.signing_certificate

    @property
    def certificate_not_after(self) -> datetime:
        return self.node.certificate_not_after

    @property
    def profile(self) -> Any:
        return PROFILES[self.model.profile]


def load_realm_file(path: Path, display: str | None = None) -> RealmSpec:
    """Read and validate the realm file; ConfigError with every problem found."""
    shown = display or str(path)
    doc = load_yaml_file(path, shown)
    problems: list[ConfigProblem] = []
    model: RealmFile | None = None
    try:
        model = RealmFile.model_validate(doc.data)
    except ValidationError as error:
        problems += problems_from_validation(error, doc.file, doc.lines, RealmFile)
    node, node_problems = resolve_node(doc, path.parent, datetime.now(UTC))
    problems += node_problems
    problems += _cross_checks(doc)
    if problems or model is None or node is None:
        raise ConfigError(sorted(set(problems), key=lambda p: (p.line or 0, p.key_path)))
    secrets = {
        client.client_id: ref
        for index, client in enumerate(model.clients)
        if (
            ref := make_secret_ref(
                client,
                "secret",
                root=path.parent,
                origin=f"{shown}:{doc.line(('clients', index))}: clients[{index}]",
            )
        )
        is not None
    }
    return RealmSpec(shown, model, node, secrets)


def _cross_checks(doc: YamlDocument) -> list[ConfigProblem]:
    """Rules across keys: client ids unique."""
    clients = doc.data.get("clients") if isinstance(doc.data, dict) else None
    if not isinstance(clients, list):
        return []
    seen: set[str] = set()
    problems = []
    for index, client in enumerate(clients):
        cid = client.get("client_id") if isinstance(client, dict) else None
        if isinstance(cid, str):
            if cid in seen:
                problems.append(
                    doc.problem(("clients", index, "client_id"), f"client {cid} given twice")
                )
            seen.add(cid)
    return problems
