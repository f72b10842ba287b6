"""The eIDAS profiles a realm file may name, and what each fixes (pure data).

``eidas-node``: a direct eIDAS node (the eIDAS SAML attribute profile: attribute names with URI
NameFormat, the PersonIdentifier as the principal, LoA class refs with comparison minimum).
``vpm``: Latvia's national login module (latvija.lv), which brokers the eIDAS node and returns
its own NameID (the person's identifier) as the subject, with the same natural-person
attributes. The profile sets the expectations verify applies (rules.py).

The ``vpm`` values (SAML 2.0, a persistent NameID, the eIDAS attribute URIs and LoA class refs)
are assumptions, not checked against VPM's integration specification: eidas/README.md lists
each and what is known against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NATURAL_PERSON = "http://eidas.europa.eu/attributes/naturalperson/"
PERSON_IDENTIFIER = NATURAL_PERSON + "PersonIdentifier"
FAMILY_NAME = NATURAL_PERSON + "CurrentFamilyName"
GIVEN_NAME = NATURAL_PERSON + "CurrentGivenName"
DATE_OF_BIRTH = NATURAL_PERSON + "DateOfBirth"

#: The four mandatory attributes of the natural-person minimum data set: friendly name -> URI.
MANDATORY_ATTRIBUTES: dict[str, str] = {
    "PersonIdentifier": PERSON_IDENTIFIER,
    "CurrentFamilyName": FAMILY_NAME,
    "CurrentGivenName": GIVEN_NAME,
    "DateOfBirth": DATE_OF_BIRTH,
}
#: Optional attributes of the natural-person data set a realm file may also import.
OPTIONAL_ATTRIBUTES: dict[str, str] = {
    name: NATURAL_PERSON + name
    for name in ("BirthName", "PlaceOfBirth", "CurrentAddress", "Gender")
}
ATTRIBUTES = {**MANDATORY_ATTRIBUTES, **OPTIONAL_ATTRIBUTES}

#: Default user attribute of each eIDAS attribute (firstName/lastName are Keycloak's own).
DEFAULT_USER_ATTRIBUTES: dict[str, str] = {
    "PersonIdentifier": "personIdentifier",
    "CurrentFamilyName": "lastName",
    "CurrentGivenName": "firstName",
    "DateOfBirth": "dateOfBirth",
}

LOA_PREFIX = "http://eidas.europa.eu/LoA/"
LoA = Literal["low", "substantial", "high"]
LOA_ORDER: tuple[str, ...] = ("low", "substantial", "high")


def loa_uri(level: str) -> str:
    return LOA_PREFIX + level


#: Signature algorithms the eIDAS cryptographic requirements allow (RSA-PSS), by Keycloak name.
ALLOWED_SIGNATURE_ALGORITHMS = ("RSA_SHA256_MGF1", "RSA_SHA512_MGF1")
#: Every value Keycloak knows, to name the weak ones in messages.
KEYCLOAK_SIGNATURE_ALGORITHMS = (
    "RSA_SHA1",
    "RSA_SHA256",
    "RSA_SHA256_MGF1",
    "RSA_SHA512",
    "RSA_SHA512_MGF1",
    "DSA_SHA1",
)

ATTRIBUTE_FORMAT_URI = "ATTRIBUTE_FORMAT_URI"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    principal_type: str  # Keycloak's principalType: ATTRIBUTE or SUBJECT
    principal_attribute: str | None  # the attribute whose value is the principal
    name_id_format: str  # the NameIDPolicy Format the AuthnRequest asks for
    requests_loa: bool  # the AuthnRequest names the LoA class refs


PROFILES: dict[str, Profile] = {
    "eidas-node": Profile(
        name="eidas-node",
        title="direct eIDAS node (eIDAS SAML attribute profile)",
        principal_type="ATTRIBUTE",
        principal_attribute=PERSON_IDENTIFIER,
        name_id_format=NAMEID_UNSPECIFIED,
        requests_loa=True,
    ),
    "vpm": Profile(
        name="vpm",
        title="Latvia's national login module VPM (latvija.lv)",
        principal_type="SUBJECT",
        principal_attribute=None,
        name_id_format=NAMEID_PERSISTENT,
        requests_loa=True,
    ),
}
