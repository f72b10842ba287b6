"""The eIDAS node given by its SAML metadata (a file or a URL) instead of, or beside, the explicit
entity id, SSO URL and certificate: what is taken from it, and each way it is refused, as the
located line the operator reads (eidas/README.md, Realm file)."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import io
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from rich.console import Console

from cityguard.cli.main import main
from cityguard.config import content_root
from cityguard.config.errors import ConfigError
from cityguard.core.context import Context
from cityguard.core.records import Outcome
from cityguard.core.secrets import forget_secrets
from cityguard.eidas.desired import desired_state
from cityguard.eidas.realm import RealmSpec, load_realm_file
from cityguard.eidas.rules import evaluate

TEMPLATE = Path(__file__).parent / "data" / "eidas-node-metadata.xml"
EXAMPLE = content_root() / "eidas" / "realm.yml"
NODE = "https://eidas-node.example.invalid/EidasNode/ServiceMetadata"
SSO_POST = "https://eidas-node.example.invalid/EidasNode/ServiceProvider"
SSO_REDIRECT = "https://eidas-node.example.invalid/EidasNode/ServiceProvider/redirect"
IN_A_YEAR = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
METADATA_FILE_KEY = "identity_provider.metadata.file"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey, name: str, days_left: int) -> x509.Certificate:
    """A self-signed certificate of the stand-in node, valid until ``days_left`` from now."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now + timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )


def body(cert: x509.Certificate) -> str:
    """The base64 DER, as an X509Certificate element and Keycloak hold it."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def metadata(key: rsa.RSAPrivateKey, **values: str) -> str:
    """The fixture's metadata with fresh certificates; ``values`` replace the defaults."""
    defaults = {
        "entity_id": NODE,
        "valid_until": IN_A_YEAR.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "signing_certificate": body(certificate(key, "node signing", 700)),
        "encryption_certificate": body(certificate(key, "node encryption", 700)),
        "sso_post": SSO_POST,
        "sso_redirect": SSO_REDIRECT,
    }
    return Template(TEMPLATE.read_text()).substitute({**defaults, **values})


def realm_with(tmp_path: Path, idp: dict[str, object], drop: tuple[str, ...] = ()) -> Path:
    """The example realm file with ``idp`` merged into its identity provider, ``drop`` removed."""
    shutil.copytree(EXAMPLE.parent / "certs", tmp_path / "certs", dirs_exist_ok=True)
    data = yaml.safe_load(EXAMPLE.read_text())
    for name in drop:
        del data["identity_provider"][name]
    data["identity_provider"].update(idp)
    path = tmp_path / "realm.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


EXPLICIT = ("idp_entity_id", "sso_url", "signing_certificate_file")


def metadata_only(tmp_path: Path, text: str | bytes) -> Path:
    """A realm file whose node comes only from a metadata file holding ``text``."""
    target = tmp_path / "node-metadata.xml"
    target.write_bytes(text.encode() if isinstance(text, str) else text)
    return realm_with(tmp_path, {"metadata": {"file": "node-metadata.xml"}}, drop=EXPLICIT)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def refusal(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_realm_file(path, "realm.yml")
    return caught.value.lines()


# --- what is taken from good metadata ------------------------------------------------------


def test_the_node_comes_from_its_metadata_file(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    signing = certificate(key, "node signing", 700)
    spec = load_realm_file(
        metadata_only(tmp_path, metadata(key, signing_certificate=body(signing)))
    )
    assert spec.node.entity_id == NODE
    assert spec.node.sso_url == SSO_POST  # HTTP-POST preferred, though listed second
    assert spec.node.sso_binding == "HTTP-POST"
    assert spec.signing_certificate == body(signing)  # not the encryption certificate
    assert spec.node.metadata_valid_until == IN_A_YEAR
    config = desired_state(spec).objects["idp:eidas"]
    assert config["config.idpEntityId"] == NODE
    assert config["config.singleSignOnServiceUrl"] == SSO_POST
    assert config["config.postBindingAuthnRequest"] == "true"
    assert config["config.signingCertificate"] == body(signing)


def test_explicit_values_that_agree_are_accepted_and_the_certificate_file_is_pinned(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    pinned = certificate(key, "node signing", 700)
    other = certificate(key, "node signing, next", 900)
    text = metadata(key, signing_certificate=body(pinned)).replace(
        "</md:KeyDescriptor>\n    <md:NameIDFormat>",
        "</md:KeyDescriptor>\n    <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>"
        f"{body(other)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n"
        "    <md:NameIDFormat>",
        1,
    )
    (tmp_path / "node-metadata.xml").write_text(text)
    (tmp_path / "pinned.pem").write_text(pem(pinned))
    explicit = {
        "idp_entity_id": NODE,
        "sso_url": SSO_POST,
        "signing_certificate_file": "pinned.pem",
    }
    path = realm_with(tmp_path, {**explicit, "metadata": {"file": "node-metadata.xml"}})
    assert load_realm_file(path).signing_certificate == body(pinned)
    # without the pin, both signing certificates are trusted (a key rollover), in order
    path = realm_with(tmp_path, {"metadata": {"file": "node-metadata.xml"}}, drop=EXPLICIT)
    assert load_realm_file(path).signing_certificate == f"{body(pinned)},{body(other)}"


def test_an_expired_certificate_in_the_metadata_is_left_out(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    old, new = certificate(key, "old", -3), certificate(key, "new", 700)
    text = metadata(key, signing_certificate=body(old)).replace(
        f"{body(old)}</ds:X509Certificate>",
        f"{body(old)}</ds:X509Certificate>\n          <ds:X509Certificate>{body(new)}"
        "</ds:X509Certificate>",
    )
    assert load_realm_file(metadata_only(tmp_path, text)).signing_certificate == body(new)


def test_a_node_offering_only_http_redirect_gets_redirect_authn_requests(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    text = metadata(key).replace(":HTTP-POST", ":HTTP-Artifact")
    spec = load_realm_file(metadata_only(tmp_path, text))
    assert (spec.node.sso_url, spec.node.sso_binding) == (SSO_REDIRECT, "HTTP-Redirect")
    assert desired_state(spec).objects["idp:eidas"]["config.postBindingAuthnRequest"] == "false"


@pytest.fixture
def served(key: rsa.RSAPrivateKey) -> Iterator[dict[str, tuple[int, bytes, str]]]:
    """A loopback HTTP server answering each path as the returned map says (status, body,
    Location); yields the map, with the server's base URL under the key ''."""
    answers: dict[str, tuple[int, bytes, str]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, data, location = answers.get(self.path, (404, b"", ""))
            if "application/xml" not in self.headers.get("Accept", ""):
                status, data = 406, b""  # as Keycloak's descriptor endpoint answers
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    answers[""] = (0, b"", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield answers
    finally:
        server.shutdown()
        server.server_close()


def test_the_node_comes_from_its_metadata_url(
    tmp_path: Path, key: rsa.RSAPrivateKey, served: dict[str, tuple[int, bytes, str]]
) -> None:
    base = served[""][2]
    served["/md.xml"] = (200, metadata(key).encode(), "")
    path = realm_with(tmp_path, {"metadata": {"url": f"{base}/md.xml"}}, drop=EXPLICIT)
    assert load_realm_file(path).node.entity_id == NODE

    served["/moved"] = (302, b"", "http://eidas-node.example.invalid/md.xml")
    path = realm_with(tmp_path, {"metadata": {"url": f"{base}/moved"}}, drop=EXPLICIT)
    line = line_of(path, "url: ")
    assert refusal(path) == [
        f"realm.yml:{line}: identity_provider.metadata.url: cannot fetch {base}/moved: "
        "redirected to http://eidas-node.example.invalid/md.xml, not https://"
    ]

    path = realm_with(tmp_path, {"metadata": {"url": f"{base}/gone"}}, drop=EXPLICIT)
    assert refusal(path) == [
        f"realm.yml:{line}: identity_provider.metadata.url: cannot fetch {base}/gone: "
        "HTTP 404 Not Found"
    ]


# --- each way metadata is refused, as the operator reads it ---------------------------------

BOMB = """<?xml version="1.0"?>
<!DOCTYPE md:EntityDescriptor [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
  <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&g;"/>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE md:EntityDescriptor [<!ENTITY node SYSTEM "file:///etc/hostname">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&node;"/>
"""
NO_IDP = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    entityID="https://eservice.example.invalid/sp">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService index="0"
        Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://eservice.example.invalid/acs"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""
DTD_REFUSED = (
    "refused: it declares a DTD or entities (SAML metadata has none; this is how "
    "entity-expansion bombs and external entities get in)"
)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not-xml", "not XML (syntax error: line 1, column 0)"),
        ("no-idp", "no IDPSSODescriptor: the metadata describes no identity provider"),
        ("no-sso", "no SingleSignOnService with the HTTP-POST or HTTP-Redirect binding"),
        ("expired", "the metadata expired on 2024-05-01 12:00 UTC (validUntil)"),
        ("bomb", DTD_REFUSED),
        ("external-entity", DTD_REFUSED),
        (
            "no-signing-certificate",
            'no signing certificate (a KeyDescriptor with use="signing" '
            "or no use, holding an X509Certificate)",
        ),
        (
            "plain-http-sso",
            "the metadata's SingleSignOnService http://eidas-node.example.invalid/"
            "sso is not https:// (http:// only on loopback)",
        ),
    ],
)
def test_broken_metadata_is_one_located_line(
    tmp_path: Path, key: rsa.RSAPrivateKey, case: str, message: str
) -> None:
    text = {
        "not-xml": lambda: "this is not XML, it is the node operator's error page",
        "no-idp": lambda: NO_IDP,
        "no-sso": lambda: (
            metadata(key)
            .replace("bindings:HTTP-Redirect", "bindings:SOAP")
            .replace("bindings:HTTP-POST", "bindings:HTTP-Artifact")
        ),
        "expired": lambda: metadata(key, valid_until="2024-05-01T12:00:00Z"),
        "bomb": lambda: BOMB,
        "external-entity": lambda: EXTERNAL,
        "no-signing-certificate": lambda: metadata(key).replace(
            'use="signing"', 'use="encryption"'
        ),
        "plain-http-sso": lambda: metadata(key, sso_post="http://eidas-node.example.invalid/sso"),
    }[case]()
    path = metadata_only(tmp_path, text)
    assert refusal(path) == [
        f"realm.yml:{line_of(path, '    file: ')}: {METADATA_FILE_KEY}: {message}"
    ]


def test_an_explicit_value_that_disagrees_with_the_metadata_is_refused_at_its_key(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    (tmp_path / "node-metadata.xml").write_text(metadata(key))
    other = "https://other-node.example.invalid/EidasNode/ServiceMetadata"
    path = realm_with(
        tmp_path,
        {"idp_entity_id": other, "metadata": {"file": "node-metadata.xml"}},
        drop=("sso_url",),
    )
    # the example's certificate file is kept: it is not one of the metadata's either
    assert refusal(path) == [
        f"realm.yml:{line_of(path, 'idp_entity_id:')}: identity_provider.idp_entity_id: "
        f"{other} disagrees with the metadata's entityID {NODE}",
        f"realm.yml:{line_of(path, 'signing_certificate_file:')}: "
        "identity_provider.signing_certificate_file: the certificate is not one of the "
        "metadata's valid signing certificates",
    ]


def test_an_unreachable_metadata_url_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/metadata.xml"
    path = realm_with(tmp_path, {"metadata": {"url": url}}, drop=EXPLICIT)
    assert refusal(path) == [
        f"realm.yml:{line_of(path, '    url: ')}: identity_provider.metadata.url: "
        f"cannot fetch {url}: Connection refused"
    ]


def test_the_metadata_source_and_the_explicit_keys_are_checked_with_everything_else(
    tmp_path: Path,
) -> None:
    both = {"file": "node.xml", "url": "https://eidas-node.example.invalid/md"}
    path = realm_with(tmp_path, {"metadata": both, "requested_loa": "highest"})
    assert refusal(path) == [
        f"realm.yml:{line_of(path, 'requested_loa:')}: identity_provider.requested_loa: "
        "Input should be 'low', 'substantial' or 'high'",
        f"realm.yml:{line_of(path, 'metadata:')}: identity_provider.metadata: "
        "give exactly one of file and url",
    ]
    path = realm_with(tmp_path, {"metadata": {"url": "http://eidas-node.example.invalid/md"}})
    assert refusal(path) == [
        f"realm.yml:{line_of(path, '    url: ')}: identity_provider.metadata.url: must be an "
        "absolute https:// metadata URL (http:// only on loopback)",
    ]
    path = realm_with(tmp_path, {"display_name": "Foreign eID"}, drop=EXPLICIT)
    idp_line = line_of(path, "identity_provider:")
    assert refusal(path) == [
        f"realm.yml:{idp_line}: identity_provider.{name}: required key is missing "
        "(or give the node's metadata)"
        for name in sorted(EXPLICIT)
    ]


def test_a_bad_metadata_url_stops_the_command_before_keycloak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2, one line, nothing recorded: the command never reached Keycloak."""
    site = tmp_path / "site"
    shutil.copytree(content_root() / "examples" / "site", site)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/metadata.xml"
    realm_with(site / "eidas", {"metadata": {"url": url}}, drop=EXPLICIT)
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("CITYGUARD_KEYCLOAK_ADMIN_PASSWORD", "admin-Password-not-for-output")
    monkeypatch.setenv("CITYGUARD_EIDAS_PORTAL_SECRET", "portal-Secret-not-for-output")
    forget_secrets()
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["eidas", "apply", "--site", str(site / "site.yml")],
        Context(Console(file=out, width=300), Console(file=err, width=300)),
    )
    assert code == 2
    assert err.getvalue().strip().splitlines() == [
        f"{site / 'eidas' / 'realm.yml'}:{line_of(site / 'eidas' / 'realm.yml', '    url: ')}: "
        f"identity_provider.metadata.url: cannot fetch {url}: Connection refused"
    ]
    assert not (tmp_path / "state").exists()


# --- verify: the metadata's validUntil ------------------------------------------------------


def live_of(spec: RealmSpec) -> dict[str, dict[str, object]]:
    live = {k: dict(v) for k, v in desired_state(spec).objects.items()}
    live["flow:eidas first broker login"]["all_providers"] = ["idp-create-user-if-unique"]
    return live


def test_verify_judges_the_metadatas_valid_until_with_the_certificate(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=10, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = load_realm_file(metadata_only(tmp_path, metadata(key, valid_until=soon)))
    until = spec.node.metadata_valid_until
    assert until is not None

    def judged(valid_until: dt.datetime | None) -> tuple[Outcome, str, str]:
        result = evaluate(
            "eservices",
            "eidas",
            "eidas-node",
            live_of(spec),
            {},
            ["CG-EIDAS-009"],
            metadata_valid_until=valid_until,
        )[0]
        return result.outcome, result.observed or "", result.expected or ""

    outcome, observed, expected = judged(until)
    assert outcome is Outcome.FAIL
    assert observed.startswith("certificate valid until ")
    assert observed.endswith(f"; metadata valid until {until:%Y-%m-%d} (10 days left)")
    assert expected == "the node's signing certificate and metadata valid for at least 30 more days"
    outcome, observed, expected = judged(None)  # the certificate alone lasts 700 days
    assert outcome is Outcome.PASS and "metadata" not in observed + expected
