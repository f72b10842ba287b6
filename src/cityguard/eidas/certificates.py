"""The node's signing certificates, as Keycloak stores them (pure).

Keycloak keeps a SAML provider's signing certificates as the base64 DER bodies, several joined
by commas (a node rolling its key over publishes two). A realm file names a PEM file, SAML
metadata carries the bodies themselves; both end up here, so a certificate that does not parse
or has expired is refused the same way whichever way it came.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime


class CertificateProblem(ValueError):
    """A certificate that cannot be used; the message is one finished sentence."""


@dataclass(frozen=True)
class Certificate:
    body: str  # base64 DER on one line, as Keycloak stores it
    not_before: datetime
    not_after: datetime

    def der(self) -> bytes:
        return base64.b64decode(self.body)


def from_pem(text: str) -> Certificate:
    """The certificate of a PEM file's text."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise CertificateProblem("not a PEM X.509 certificate") from None
    body = "".join(
        line.strip() for line in text.strip().splitlines() if line and not line.startswith("-----")
    )
    return Certificate(body, cert.not_valid_before_utc, cert.not_valid_after_utc)


def from_base64(text: str, what: str) -> Certificate:
    """A certificate given as base64 DER (an XML X509Certificate's text, whitespace allowed)."""
    from cryptography import x509

    body = "".join(text.split())
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error):
        raise CertificateProblem(f"{what} is not an X.509 certificate") from None
    return Certificate(body, cert.not_valid_before_utc, cert.not_valid_after_utc)


def joined(certificates: list[Certificate]) -> str:
    """Keycloak's signingCertificate value: the bodies, comma-separated."""
    return ",".join(c.body for c in certificates)
