"""A small eIDAS node for the negative cases: a pysaml2 IdP inside the test process.

It answers the AuthnRequests the broker sends with eIDAS-profile responses (natural-person
attributes with URI NameFormat, the LoA as AuthnContextClassRef, the assertion signed and
encrypted to the broker's key), and each answer can be spoiled on purpose: unsigned, for
another audience, without the PersonIdentifier, expired, at a lower LoA. Signing and encryption
go through Debian's xmlsec1, as pysaml2 does in production.

No HTTP server: the login test intercepts the browser's POST to the node's SSO URL and hands
the form to ``EidasIdp.answer``, which returns the form the node's page would post back to the
broker. The node's key and certificate are made for the session (the key stays in a private
temporary directory).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST
from saml2.assertion import Policy
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from cityguard.eidas.profiles import MANDATORY_ATTRIBUTES, loa_uri

XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
# RSA-SHA256 (PKCS#1 v1.5): Debian 12's xmlsec1 1.2.37 has no RSA-PSS (the eIDAS profile's
# sha256-rsa-MGF1), and Keycloak's secure validation refuses rsa-sha1, pysaml2's default.


@dataclass(frozen=True)
class Person:
    """A citizen as the node knows them (the eIDAS minimum data set)."""

    person_identifier: str
    given_name: str
    family_name: str
    date_of_birth: str

    def attributes(self) -> dict[str, list[str]]:
        return {
            "PersonIdentifier": [self.person_identifier],
            "CurrentGivenName": [self.given_name],
            "CurrentFamilyName": [self.family_name],
            "DateOfBirth": [self.date_of_birth],
        }


@dataclass(frozen=True)
class Spoil:
    """What to get wrong in one answer (the default gets nothing wrong)."""

    sign_response: bool = True
    sign_assertion: bool = True
    audience: str | None = None  # another SP's entity id in the AudienceRestriction
    drop: tuple[str, ...] = ()  # eIDAS attributes (friendly names) left out
    lifetime_minutes: int = 5  # negative: NotOnOrAfter already past when it is issued
    loa: str = "substantial"  # the LoA the node says it authenticated at
    encrypt: bool = True


def make_certificate(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A self-signed RSA signing key and certificate for the node; (key file, cert file)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "node.key", directory / "node.pem"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def eidas_converter() -> AttributeConverter:
    """Friendly eIDAS names <-> their URIs, with URI NameFormat."""
    converter = AttributeConverter(NAME_FORMAT_URI)
    converter.from_dict(
        {
            "identifier": NAME_FORMAT_URI,
            "fro": {uri: name for name, uri in MANDATORY_ATTRIBUTES.items()},
            "to": {name: uri for name, uri in MANDATORY_ATTRIBUTES.items()},
        }
    )
    return converter


class _Policy(Policy):
    """pysaml2's release policy, with the AudienceRestriction naming ``audience`` if given."""

    def __init__(self, restrictions: dict[str, Any], audience: str | None) -> None:
        super().__init__(restrictions, mds=None)
        self._audience = audience

    def conditions(self, sp_entity_id: str) -> Any:
        return super().conditions(self._audience or sp_entity_id)


class EidasIdp:
    """The node: its entity id, SSO URL, certificate; answers AuthnRequests."""

    def __init__(
        self,
        entity_id: str,
        sso_url: str,
        key_file: Path,
        cert_file: Path,
        sp_metadata: Path,
        encryption_certificate: str,
    ) -> None:
        self.entity_id = entity_id
        self.sso_url = sso_url
        self.key_file, self.cert_file = key_file, cert_file
        self._encryption_certificate = encryption_certificate
        config = IdPConfig()
        config.load(self._config(sp_metadata))
        self.server = Server(config=config)
        self.server.config.attribute_converters = [eidas_converter()]

    def _config(self, sp_metadata: Path) -> dict[str, Any]:
        return {
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC1,
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "metadata": {"local": [str(sp_metadata)]},
            "allow_unknown_attributes": True,
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_POST)]},
                    "want_authn_requests_signed": False,
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 5},
                            "name_form": NAME_FORMAT_URI,
                            "attribute_restrictions": None,
                        }
                    },
                }
            },
        }

    def answer(
        self, form: dict[str, str], person: Person, spoil: Spoil | None = None
    ) -> tuple[str, dict[str, str]]:
        """The broker's AuthnRequest (the POSTed form) answered: (ACS URL, form to post)."""
        spoil = spoil or Spoil()
        request = self.server.parse_authn_request(form["SAMLRequest"], BINDING_HTTP_POST)
        message = request.message
        acs = str(message.assertion_consumer_service_url)
        sp_entity_id = str(message.issuer.text)
        # no metadata store: the node releases the whole minimum data set (pysaml2 would drop
        # requested attributes whose friendly names its own converters do not know)
        policy = _Policy(
            {
                "default": {
                    "lifetime": {"minutes": spoil.lifetime_minutes},
                    "name_form": NAME_FORMAT_URI,
                    "attribute_restrictions": None,
                }
            },
            spoil.audience,
        )
        identity = {
            name: values for name, values in person.attributes().items() if name not in spoil.drop
        }
        name_id = NameID(
            format=NAMEID_FORMAT_PERSISTENT, text=person.person_identifier.replace("/", "-")
        )
        response = self.server.create_authn_response(
            identity,
            in_response_to=message.id,
            destination=acs,
            sp_entity_id=sp_entity_id,
            name_id=name_id,
            authn={"class_ref": loa_uri(spoil.loa), "authn_auth": self.entity_id},
            sign_response=spoil.sign_response,
            sign_assertion=spoil.sign_assertion,
            encrypt_assertion=spoil.encrypt,
            encrypt_cert_assertion=self._encryption_certificate if spoil.encrypt else None,
            encrypt_assertion_self_contained=True,
            release_policy=policy,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        encoded = base64.b64encode(str(response).encode()).decode()
        fields = {"SAMLResponse": encoded}
        if "RelayState" in form:
            fields["RelayState"] = form["RelayState"]
        return acs, fields
