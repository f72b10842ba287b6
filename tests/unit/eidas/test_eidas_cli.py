"""`cityguard eidas` on bad input: exit 2 with one located line per problem, nothing changed;
Keycloak unreachable: exit 3 with one line. Through the real command line, in process."""

from __future__ import annotations

import io
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from cityguard.cli.main import main
from cityguard.config import content_root
from cityguard.core.context import Context
from cityguard.core.secrets import forget_secrets

EXAMPLE = content_root() / "examples" / "site"
PASSWORD_ENV = "CITYGUARD_KEYCLOAK_ADMIN_PASSWORD"  # the example site's
PORTAL_ENV = "CITYGUARD_EIDAS_PORTAL_SECRET"  # the example realm file's


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(Console(file=out, width=300), Console(file=err, width=300))
    code = main(list(argv), ctx)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example site, its state directory not yet made."""
    target = tmp_path / "site"
    shutil.copytree(EXAMPLE, target)
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(PASSWORD_ENV, "admin-Password-not-for-output")
    monkeypatch.setenv(PORTAL_ENV, "portal-Secret-not-for-output")
    monkeypatch.delenv("CITYGUARD_EVIDENCE_DSN", raising=False)
    forget_secrets()
    return target / "site.yml"


def edit_site(site: Path, **eidas: object) -> None:
    data = yaml.safe_load(site.read_text())
    for key, value in eidas.items():
        if value is None:
            data["eidas"].pop(key, None)
        else:
            data["eidas"][key] = value
    site.write_text(yaml.safe_dump(data, sort_keys=False))


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def state_of(site: Path) -> Path:
    return site.parent.parent / "state"


@pytest.mark.parametrize("command", ["plan", "apply", "verify", "export"])
def test_a_site_without_an_eidas_section_is_refused(site: Path, command: str) -> None:
    data = yaml.safe_load(site.read_text())
    del data["eidas"]
    site.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = run("eidas", command, "--site", str(site))
    assert code == 2
    line = one_line(err)
    assert line.startswith(str(site)) and "no eidas section" in line
    assert out == "" and not state_of(site).exists()


def test_keycloak_off_loopback_is_refused_at_its_line(site: Path) -> None:
    edit_site(site, url="https://keycloak.ventspils.example.invalid")
    code, _, err = run("eidas", "plan", "--site", str(site))
    assert code == 2
    line = one_line(err)
    number = next(
        i for i, text in enumerate(site.read_text().splitlines(), 1) if "keycloak.ventspils" in text
    )
    assert line.startswith(f"{site}:{number}: eidas.url: ")
    assert "loopback" in line
    assert not state_of(site).exists()


def test_a_missing_realm_file_is_refused(site: Path) -> None:
    edit_site(site, realm_file="eidas/nowhere.yml")
    code, _, err = run("eidas", "apply", "--site", str(site))
    assert code == 2
    line = one_line(err)
    assert "eidas.realm_file: file not found" in line and "nowhere.yml" in line
    assert not state_of(site).exists()


def test_two_password_sources_are_one_problem(site: Path) -> None:
    edit_site(site, admin_password_file="/etc/cityguard/keycloak-admin")
    code, _, err = run("eidas", "verify", "--site", str(site))
    assert code == 2
    assert "exactly one" in one_line(err)


def test_a_bad_realm_file_gives_its_file_line_and_key(site: Path) -> None:
    realm = site.parent / "eidas" / "realm.yml"
    text = realm.read_text().replace(
        "signature_algorithm: RSA_SHA256_MGF1", "signature_algorithm: RSA_SHA1"
    )
    realm.write_text(text)
    code, _, err = run("eidas", "plan", "--site", str(site))
    assert code == 2
    line = one_line(err)
    number = next(i for i, t in enumerate(text.splitlines(), 1) if "RSA_SHA1" in t)
    assert line.startswith(f"{site.parent / 'eidas' / 'realm.yml'}:{number}: ")
    assert "identity_provider.signature_algorithm" in line and "RSA_SHA1" in line
    assert not state_of(site).exists()


def test_an_unset_admin_password_is_one_line_naming_the_variable(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV)
    code, _, err = run("eidas", "plan", "--site", str(site))
    assert code == 2
    line = one_line(err)
    assert PASSWORD_ENV in line and "unset" in line


def test_keycloak_unreachable_is_exit_3_in_one_line_without_secrets(site: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    edit_site(site, url=f"http://127.0.0.1:{port}", timeout_s=5)
    for command in ("plan", "verify"):
        code, out, err = run("eidas", command, "--site", str(site))
        assert code == 3, (out, err)
        line = one_line(err)
        assert f"127.0.0.1:{port}" in line
        assert "not-for-output" not in out + err


def test_an_unknown_format_is_a_usage_error(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run("eidas", "plan", "--site", str(site), "--format", "xml")
    assert stopped.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
