"""End-to-end brokered login through a stand-in eIDAS node, on the session's real Keycloak.

The stand-in node is a second realm acting as SAML IdP: it signs responses and assertions
(RSA-PSS), encrypts assertions to the broker realm's key and issues the eIDAS natural-person
attributes with URI NameFormat. The broker realm is made by `cityguard eidas apply` from a realm
file pointing at it. An HTTP client starts a login at the e-service's OIDC client, follows the
SAML POST forms (loopback only; the e-service's own redirect is read, never followed), logs in
at the node and exchanges the code for tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eidas_support import (
    PORTAL_SECRET_ENV,
    brokered_login,
    example_realm,
    id_token_claims,
    make_site,
    run_cli,
)
from keycloak_server import KeycloakServer

from cityguard.eidas.keycloak import Connection, Keycloak
from cityguard.eidas.profiles import ATTRIBUTES

pytestmark = pytest.mark.integration

BROKER = "eservices-login"
NODE = "eidas-node"
SECRET = "login-portal-Secret-0815"
PASSWORD = "node-user-password-1"
PEOPLE = {
    "anna": ("DE/LV/1234567890", "Anna", "Schmidt", "1980-02-03"),
    "anna2": ("DE/LV/9876543210", "Anna", "Schmidt", "1991-07-08"),
}


@pytest.fixture(scope="module")
def admin(keycloak: KeycloakServer) -> Keycloak:
    return Keycloak(
        Connection(keycloak.url, "master", keycloak.admin_user, keycloak.admin_password)
    )


def create_node(admin: Keycloak, url: str) -> str:
    """The stand-in node realm with its users and the broker's SAML client; its signing cert."""
    if not admin.realm_exists(NODE):
        admin.post(
            "admin/realms",
            {
                "realm": NODE,
                "enabled": True,
                "sslRequired": "external",
                "duplicateEmailsAllowed": True,  # two people, one email: the test's point
                "loginWithEmailAllowed": False,
            },
        )
    base = f"admin/realms/{NODE}"
    profile = admin.get(f"{base}/users/profile")
    profile["unmanagedAttributePolicy"] = "ENABLED"
    admin.put(f"{base}/users/profile", profile)
    for username, (pid, given, family, born) in PEOPLE.items():
        admin.post(
            f"{base}/users",
            {
                "username": username,
                "enabled": True,
                "email": "same.person@example.invalid",  # the same email for both
                "emailVerified": True,
                "firstName": given,
                "lastName": family,
                "attributes": {"personIdentifier": [pid], "dateOfBirth": [born]},
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            },
        )
    broker_keys = admin.get(f"admin/realms/{BROKER}/keys")["keys"]
    enc_cert = next(
        k["certificate"] for k in broker_keys if k.get("use") == "ENC" and k.get("certificate")
    )
    sp = f"{url}/realms/{BROKER}"
    mappers = [
        {
            "name": friendly,
            "protocol": "saml",
            "protocolMapper": "saml-user-attribute-mapper",
            "config": {
                "user.attribute": attr,
                "attribute.name": ATTRIBUTES[friendly],
                "attribute.nameformat": "URI Reference",
                "friendly.name": friendly,
            },
        }
        for friendly, attr in (
            ("PersonIdentifier", "personIdentifier"),
            ("DateOfBirth", "dateOfBirth"),
            ("CurrentGivenName", "firstName"),
            ("CurrentFamilyName", "lastName"),
        )
    ]
    admin.post(
        f"{base}/clients",
        {
            "clientId": sp,
            "protocol": "saml",
            "enabled": True,
            "redirectUris": [f"{sp}/broker/eidas/endpoint"],
            "frontchannelLogout": False,
            "attributes": {
                "saml.assertion.signature": "true",
                "saml.server.signature": "true",
                "saml.signature.algorithm": "RSA_SHA256_MGF1",
                "saml.client.signature": "false",
                "saml.encrypt": "true",
                "saml.encryption.certificate": enc_cert,
                "saml.authnstatement": "true",
                "saml_name_id_format": "unspecified",
                "saml_assertion_consumer_url_post": f"{sp}/broker/eidas/endpoint",
            },
            "protocolMappers": mappers,
        },
    )
    keys = admin.get(f"{base}/keys")["keys"]
    return str(
        next(
            k["certificate"] for k in keys if k.get("algorithm") == "RS256" and k.get("certificate")
        )
    )


@pytest.fixture(scope="module")
def broker(
    keycloak: KeycloakServer, admin: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("eidas-login")
    state = tmp_path_factory.mktemp("eidas-login-state")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(state))
        env.setenv(PORTAL_SECRET_ENV, SECRET)
        realm = example_realm(directory, keycloak, BROKER)
        idp = realm["identity_provider"]
        idp["idp_entity_id"] = f"{keycloak.url}/realms/{NODE}"
        idp["sso_url"] = f"{keycloak.url}/realms/{NODE}/protocol/saml"
        idp["want_authn_requests_signed"] = False
        site = make_site(directory, keycloak, realm)
        # first apply with the example certificate: the broker realm's encryption key exists
        first = run_cli("eidas", "apply", "--site", str(site))
        assert first.code == 0, first.err
        cert = create_node(admin, keycloak.url)
        pem = "-----BEGIN CERTIFICATE-----\n" + cert + "\n-----END CERTIFICATE-----\n"
        (directory / "certs" / "example-node-signing.pem").write_text(pem)
        second = run_cli("eidas", "apply", "--site", str(site))
        assert second.code == 0, second.err
        assert "config.signingCertificate" in second.out
        yield site


def login(url: str, username: str) -> dict[str, object]:
    """A full brokered login, ``username`` logging in at the node; the ID token's claims."""
    logged_in = False

    def at_node(page: str, action: str, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
        nonlocal logged_in
        if "SAMLRequest" in fields or "SAMLResponse" in fields:
            return action, fields
        if not logged_in and 'name="password"' in page:
            logged_in = True
            return action, {"username": username, "password": PASSWORD}
        raise AssertionError(f"unexpected page: {page[:800]}")

    return id_token_claims(url, BROKER, SECRET, brokered_login(url, BROKER, at_node))


def test_brokered_login_gives_tokens_with_the_person_identifier_and_names(
    broker: Path, keycloak: KeycloakServer, admin: Keycloak
) -> None:
    claims = login(keycloak.url, "anna")
    assert claims["person_identifier"] == "DE/LV/1234567890"
    assert claims["given_name"] == "Anna" and claims["family_name"] == "Schmidt"
    assert claims["birthdate"] == "1980-02-03"
    assert claims["preferred_username"] == "de/lv/1234567890"

    again = login(keycloak.url, "anna")
    assert again["sub"] == claims["sub"], "the same PersonIdentifier must reuse the user"

    other = login(keycloak.url, "anna2")
    assert other["person_identifier"] == "DE/LV/9876543210"
    assert other["sub"] != claims["sub"], "another PersonIdentifier is another user"
    users = admin.get(f"admin/realms/{BROKER}/users?briefRepresentation=true&max=50")
    assert sorted(u["username"] for u in users) == ["de/lv/1234567890", "de/lv/9876543210"]
    assert run_cli("eidas", "verify", "--site", str(broker)).code == 0
