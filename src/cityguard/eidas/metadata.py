"""The eIDAS node's SAML metadata, read for what the broker needs (pure: bytes in, values out).

A node publishes its entity id, single sign-on URL and signing certificates as SAML metadata
(an ``md:EntityDescriptor`` with an ``md:IDPSSODescriptor``); a realm file may name it instead
of copying those values by hand. Only what Keycloak's identity provider needs is taken: the
entityID, the SingleSignOnService Location for the HTTP-POST binding (else HTTP-Redirect), the
certificates of the KeyDescriptors for signing (``use="signing"`` or no ``use``; never the
encryption ones), and ``validUntil`` (the earlier of the EntityDescriptor's and the
IDPSSODescriptor's).

Metadata comes from outside, possibly over the network, so it is parsed by defusedxml with
DTDs refused outright: SAML metadata has no DTD, and a DTD is how entity-expansion bombs and
external entities (local files, network fetches) get in. Every problem is one sentence, all of
them at once where the document is readable at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError

from cityguard.eidas.certificates import Certificate, CertificateProblem, from_base64

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#: Bindings Keycloak can send an AuthnRequest with, preferred first: name shown -> URI
BINDINGS = {"HTTP-POST": HTTP_POST, "HTTP-Redirect": HTTP_REDIRECT}
#: Largest metadata read (bytes): one node's metadata is a few kilobytes
MAX_BYTES = 4 * 1024 * 1024


class MetadataError(ValueError):
    """Metadata that cannot be used: one sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class NodeMetadata:
    entity_id: str
    sso_url: str
    sso_binding: str  # a key of BINDINGS
    certificates: tuple[Certificate, ...]  # the signing ones still valid, in document order
    valid_until: datetime | None


def parse_metadata(data: bytes, now: datetime) -> NodeMetadata:
    """The node's values from its metadata; MetadataError with every problem found."""
    root = _parse(data)
    if root.tag != f"{{{MD}}}EntityDescriptor":
        if root.tag == f"{{{MD}}}EntitiesDescriptor":
            raise MetadataError(
                [
                    "an EntitiesDescriptor (a federation's aggregate): give the node's own "
                    "EntityDescriptor"
                ]
            )
        raise MetadataError(
            [f"not SAML metadata: the root element is {_local(root.tag)}, not EntityDescriptor"]
        )
    idps = root.findall(f"{{{MD}}}IDPSSODescriptor")
    if not idps:
        raise MetadataError(["no IDPSSODescriptor: the metadata describes no identity provider"])
    idp = next((d for d in idps if SAML2_PROTOCOL in _protocols(d)), None)
    if idp is None:
        raise MetadataError(["the IDPSSODescriptor does not support SAML 2.0"])
    problems: list[str] = []
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id:
        problems.append("the EntityDescriptor has no entityID")
    sso = _single_sign_on(idp)
    if sso is None:
        problems.append("no SingleSignOnService with the HTTP-POST or HTTP-Redirect binding")
    valid_until = _valid_until(root, idp, problems)
    if valid_until is not None and valid_until <= now:
        problems.append(f"the metadata expired on {valid_until:%Y-%m-%d %H:%M} UTC (validUntil)")
    certificates = _signing_certificates(idp, now, problems)
    if problems or sso is None:
        raise MetadataError(problems)
    return NodeMetadata(entity_id, sso[1], sso[0], certificates, valid_until)


def _parse(data: bytes) -> Element:
    import defusedxml.ElementTree as SafeTree
    from defusedxml import DefusedXmlException

    if len(data) > MAX_BYTES:
        raise MetadataError([f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not read"])
    try:
        root: Element = SafeTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise MetadataError(
            [
                "refused: it declares a DTD or entities (SAML metadata has none; this is how "
                "entity-expansion bombs and external entities get in)"
            ]
        ) from None
    except ParseError as error:
        raise MetadataError([f"not XML ({error})"]) from None
    return root


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _protocols(descriptor: Element) -> list[str]:
    return (descriptor.get("protocolSupportEnumeration") or "").split()


def _single_sign_on(idp: Element) -> tuple[str, str] | None:
    """(binding name, Location) of the preferred SingleSignOnService."""
    services = idp.findall(f"{{{MD}}}SingleSignOnService")
    for name, uri in BINDINGS.items():
        for service in services:
            location = (service.get("Location") or "").strip()
            if service.get("Binding") == uri and location:
                return name, location
    return None


def _valid_until(root: Element, idp: Element, problems: list[str]) -> datetime | None:
    """The earlier validUntil of the EntityDescriptor and the IDPSSODescriptor, in UTC."""
    found: list[datetime] = []
    for element in (root, idp):
        text = element.get("validUntil")
        if text is None:
            continue
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            problems.append(f"validUntil {text!r} is not a date and time")
            continue
        found.append(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)
    return min(found).astimezone(UTC) if found else None


def _signing_certificates(
    idp: Element, now: datetime, problems: list[str]
) -> tuple[Certificate, ...]:
    """The signing KeyDescriptors' certificates still valid; a problem when none is left."""
    texts = [
        cert.text or ""
        for key in idp.findall(f"{{{MD}}}KeyDescriptor")
        if key.get("use", "signing") == "signing"
        for cert in key.iter(f"{{{DS}}}X509Certificate")
    ]
    if not texts:
        problems.append(
            'no signing certificate (a KeyDescriptor with use="signing" or no use, '
            "holding an X509Certificate)"
        )
        return ()
    certificates: list[Certificate] = []
    for number, text in enumerate(texts, 1):
        try:
            certificates.append(from_base64(text, f"signing certificate {number}"))
        except CertificateProblem as problem:
            problems.append(str(problem))
    valid = [c for c in certificates if c.not_after > now]
    if certificates and not valid:
        last = max(c.not_after for c in certificates)
        problems.append(f"every signing certificate has expired (the last on {last:%Y-%m-%d})")
    return tuple(valid)
