"""The eIDAS node's values (entity id, SSO URL, signing certificates) as the realm file gives them.

A realm file gives them explicitly (``idp_entity_id``, ``sso_url``,
``signing_certificate_file``), by the node's SAML metadata (``metadata: {file: ...}`` or
``metadata: {url: ...}``), or both: then every value given explicitly must agree with the
metadata, since two sources that disagree mean one of them is out of date, and guessing which
would trust the wrong node. With both, an explicit certificate file is what Keycloak trusts
(pinned): metadata that adds another certificate does not widen the trust. Without it, the
metadata's signing certificates that are still valid are trusted (two during a key rollover).

Worked out from the realm file's raw data, so its problems are found even when other keys are
wrong (all at once, located at their key); a value the model refuses (a bad URL, both ``file``
and ``url``) is left to the model's message and not used here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cityguard.config.errors import ConfigProblem, KeyPath, format_key_path
from cityguard.config.yaml_lines import YamlDocument
from cityguard.eidas.certificates import Certificate, CertificateProblem, from_pem, joined
from cityguard.eidas.metadata import MetadataError, NodeMetadata, parse_metadata
from cityguard.eidas.metadata_source import fetch, read_file
from cityguard.eidas.uris import is_entity_id, secure_url

IDP = "identity_provider"
#: The explicit keys metadata can stand in for
EXPLICIT = ("idp_entity_id", "sso_url", "signing_certificate_file")


@dataclass(frozen=True)
class Node:
    """What Keycloak's identity provider is told about the node, from whichever source."""

    entity_id: str
    sso_url: str
    sso_binding: str  # HTTP-POST or HTTP-Redirect: how Keycloak sends the AuthnRequest
    certificates: tuple[Certificate, ...]  # trusted for the node's signatures, first judged
    metadata_valid_until: datetime | None = None

    @property
    def signing_certificate(self) -> str:
        return joined(list(self.certificates))

    @property
    def certificate_not_after(self) -> datetime:
        return self.certificates[0].not_after


def resolve_node(
    doc: YamlDocument, root: Path, now: datetime
) -> tuple[Node | None, list[ConfigProblem]]:
    """The node's values, or None with the problems (every one found)."""
    idp = doc.data.get(IDP) if isinstance(doc.data, dict) else None
    if not isinstance(idp, dict):
        return None, []  # reported by the model
    explicit = {key: value for key in EXPLICIT if isinstance(value := idp.get(key), str)}
    problems: list[ConfigProblem] = []
    pinned: Certificate | None = None
    if "signing_certificate_file" in explicit:
        pinned = _certificate_file(doc, root / explicit["signing_certificate_file"], now, problems)
    metadata: NodeMetadata | None = None
    if idp.get("metadata") is None:
        for key in EXPLICIT:
            if idp.get(key) is None:
                problems.append(_missing(doc, key))
    else:
        metadata = _metadata(doc, idp["metadata"], root, now, problems)
    if metadata is not None:
        problems += _disagreements(doc, explicit, pinned, metadata)
    if problems:
        return None, problems
    if metadata is None:
        if pinned is None or len(explicit) != len(EXPLICIT):
            return None, []  # a value the model refused
        return Node(explicit["idp_entity_id"], explicit["sso_url"], "HTTP-POST", (pinned,)), []
    return Node(
        explicit.get("idp_entity_id", metadata.entity_id),
        explicit.get("sso_url", metadata.sso_url),
        metadata.sso_binding,
        (pinned,) if pinned is not None else metadata.certificates,
        metadata.valid_until,
    ), []


def _missing(doc: YamlDocument, key: str) -> ConfigProblem:
    """As the model says a missing key is missing, with the other way to give it."""
    return ConfigProblem(
        doc.file,
        doc.line((IDP,)),
        format_key_path((IDP, key)),
        "required key is missing (or give the node's metadata)",
    )


def _certificate_file(
    doc: YamlDocument, path: Path, now: datetime, problems: list[ConfigProblem]
) -> Certificate | None:
    key = (IDP, "signing_certificate_file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(doc.problem(key, f"file not found: {path}"))
        return None
    except (OSError, UnicodeDecodeError):
        problems.append(doc.problem(key, f"cannot read {path}"))
        return None
    try:
        certificate = from_pem(text)
    except CertificateProblem as problem:
        problems.append(doc.problem(key, str(problem)))
        return None
    if certificate.not_after <= now:
        expired = f"certificate expired on {certificate.not_after:%Y-%m-%d}"
        problems.append(doc.problem(key, expired))
        return None
    return certificate


def _metadata(
    doc: YamlDocument,
    given: Any,
    root: Path,
    now: datetime,
    problems: list[ConfigProblem],
) -> NodeMetadata | None:
    """The metadata the realm file names, read and parsed; None when it cannot be."""
    if not isinstance(given, dict):
        return None  # reported by the model
    sources = {k: v for k, v in given.items() if k in ("file", "url") and isinstance(v, str)}
    if len(sources) != 1 or len(given) != 1:
        return None  # reported by the model (exactly one of file and url)
    kind, value = next(iter(sources.items()))
    key: KeyPath = (IDP, "metadata", kind)
    if not value or (kind == "url" and not secure_url(value)):
        return None  # reported by the model
    try:
        data = read_file(root / value) if kind == "file" else fetch(value)
        metadata = parse_metadata(data, now)
    except MetadataError as error:
        problems += [doc.problem(key, problem) for problem in error.problems]
        return None
    found = []
    if not is_entity_id(metadata.entity_id):
        found.append(f"the metadata's entityID {metadata.entity_id} is not an absolute URI")
    if not secure_url(metadata.sso_url):
        found.append(
            f"the metadata's SingleSignOnService {metadata.sso_url} is not https:// "
            "(http:// only on loopback)"
        )
    problems += [doc.problem(key, problem) for problem in found]
    return None if found else metadata


def _disagreements(
    doc: YamlDocument,
    explicit: dict[str, str],
    pinned: Certificate | None,
    metadata: NodeMetadata,
) -> list[ConfigProblem]:
    """Each explicit value that is not what the metadata says, at its own key."""
    problems = []
    entity = explicit.get("idp_entity_id")
    if entity is not None and entity != metadata.entity_id:
        problems.append(
            doc.problem(
                (IDP, "idp_entity_id"),
                f"{entity} disagrees with the metadata's entityID {metadata.entity_id}",
            )
        )
    sso = explicit.get("sso_url")
    if sso is not None and sso != metadata.sso_url:
        problems.append(
            doc.problem(
                (IDP, "sso_url"),
                f"{sso} disagrees with the metadata's SingleSignOnService {metadata.sso_url} "
                f"({metadata.sso_binding})",
            )
        )
    if pinned is not None and pinned.der() not in {c.der() for c in metadata.certificates}:
        problems.append(
            doc.problem(
                (IDP, "signing_certificate_file"),
                "the certificate is not one of the metadata's valid signing certificates",
            )
        )
    return problems
