"""Helpers of the eIDAS integration tests: a site around the session's Keycloak, the CLI."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from keycloak_server import ADMIN_PASSWORD_ENV, KeycloakServer
from rich.console import Console

from cityguard.cli.main import main
from cityguard.config import content_root
from cityguard.core.context import Context

CONTENT = content_root()
PORTAL_SECRET_ENV = "CITYGUARD_TEST_PORTAL_SECRET"


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
