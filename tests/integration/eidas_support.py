"""Helpers of the eIDAS integration tests: a site around the session's Keycloak, the CLI, and
a brokered login as the e-service's browser would walk it."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import yaml
from keycloak_server import ADMIN_PASSWORD_ENV, KeycloakServer
from rich.console import Console

from cityguard.cli.main import main
from cityguard.config import content_root
from cityguard.core.context import Context

CONTENT = content_root()
PORTAL_SECRET_ENV = "CITYGUARD_TEST_PORTAL_SECRET"
CLIENT_ID = "eservice-portal"  # the example realm file's e-service client
REDIRECT = "https://e.ventspils.example.invalid/oidc/callback"


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(
        Console(file=out, width=200, soft_wrap=True), Console(file=err, width=200, soft_wrap=True)
    )
    code = main(list(argv), ctx)
    return CliResult(code, out.getvalue(), err.getvalue())


def make_site(directory: Path, server: KeycloakServer, realm: dict[str, object]) -> Path:
    """A site file whose eidas section points at the session's Keycloak and ``realm``."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONTENT / "examples" / "site" / "inventory.yml", directory / "inventory.yml")
    (directory / "realm.yml").write_text(yaml.safe_dump(realm, sort_keys=False))
    site = {
        "version": 1,
        "site": {"name": "eidas-test", "title": "eIDAS test site"},
        "inventory": "inventory.yml",
        "baseline": "municipal-server",
        "eidas": {
            "url": server.url,
            "admin_user": server.admin_user,
            "admin_password_env": ADMIN_PASSWORD_ENV,
            "realm_file": "realm.yml",
        },
    }
    (directory / "site.yml").write_text(yaml.safe_dump(site, sort_keys=False))
    return directory / "site.yml"


def example_realm(directory: Path, server: KeycloakServer, name: str) -> dict[str, object]:
    """The example realm file, renamed, with its certificate copied next to it."""
    realm = yaml.safe_load((CONTENT / "eidas" / "realm.yml").read_text())
    (directory / "certs").mkdir(parents=True, exist_ok=True)
    shutil.copy(
        CONTENT / "eidas" / "certs" / "example-node-signing.pem",
        directory / "certs" / "example-node-signing.pem",
    )
    realm["realm"] = name
    realm["identity_provider"]["sp_entity_id"] = f"{server.url}/realms/{name}"
    realm["clients"][0]["secret_env"] = PORTAL_SECRET_ENV
    return realm


#: What a login does with a page's form: (page, action, fields) -> (action, fields) to post.
FormAnswer = Callable[[str, str, dict[str, str]], tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Login:
    """How a brokered login ended: an authorization code, or the page it stopped at."""

    code: str | None
    verifier: str
    status: int
    page: str

    @property
    def text(self) -> str:
        """What the page says, without its markup (for assertions and failure messages)."""
        body = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", self.page)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def brokered_login(url: str, realm: str, answer: FormAnswer) -> Login:
    """Start a login at the e-service's client in ``realm`` (straight to the eIDAS provider) and
    follow it as a browser would, on loopback only, until Keycloak redirects back to the
    e-service (whose redirect is read, never followed) or shows a page without a form.

    Every form on the way is posted as ``answer`` returns it: the SAML POST binding's forms as
    they are, a login form filled in, the node's part played by a test IdP.
    """
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    with httpx.Client(follow_redirects=False, timeout=60) as http:
        response = http.get(
            f"{url}/realms/{realm}/protocol/openid-connect/auth",
            params={
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "openid profile",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "kc_idp_hint": "eidas",
            },
        )
        for _ in range(20):
            # Keycloak's cookies are Secure; a browser sends them to http://127.0.0.1 (a secure
            # context), httpx does not
            for cookie in http.cookies.jar:
                cookie.secure = False
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(REDIRECT):
                    code = parse_qs(urlsplit(location).query).get("code", [None])[0]
                    return Login(code, verifier, response.status_code, location)
                _loopback(location)
                response = http.get(location)
                continue
            page = response.text
            if response.status_code != 200 or "<form" not in page:
                return Login(None, verifier, response.status_code, page)
            action, fields = answer(page, *_form(page, str(response.url)))
            _loopback(action)
            response = http.post(action, data=fields)
        raise AssertionError(f"the login did not end at {response.url}: {response.status_code}")


def id_token_claims(url: str, realm: str, secret: str, done: Login) -> dict[str, object]:
    """The claims of the ID token the e-service gets for the login's code."""
    assert done.code, f"no code: {done.status} {done.text[:300]}"
    token = httpx.post(
        f"{url}/realms/{realm}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "code": done.code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "code_verifier": done.verifier,
        },
        timeout=60,
    )
    assert token.status_code == 200, token.text
    payload = token.json()["id_token"].split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return claims


def _form(page: str, base: str) -> tuple[str, dict[str, str]]:
    """The page's form: its action, made absolute, and its input fields."""
    match = re.search(r'<form[^>]*action="([^"]+)"', page, re.IGNORECASE)
    assert match, f"no form in page: {page[:300]}"
    fields = {
        html.unescape(n): html.unescape(v)
        for n, v in re.findall(
            r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page, re.IGNORECASE
        )
    }
    return urljoin(base, html.unescape(match.group(1))), fields


def _loopback(url: str) -> None:
    assert urlsplit(url).hostname == "127.0.0.1", f"refusing to leave loopback: {url}"
