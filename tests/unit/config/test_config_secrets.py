"""The site's secret references: the evidence DSN by variable, file or systemd credential."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from cityguard.config import content_root, load_site
from cityguard.config.site import make_secret_ref
from cityguard.core.secrets import SecretError, SecretRef, forget_secrets, redact

EXAMPLE = content_root() / "examples" / "site"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CITYGUARD_EVIDENCE_DSN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    forget_secrets()
    yield
    forget_secrets()


def site_with_evidence(tmp_path: Path, evidence: str) -> Path:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    path = site / "site.yml"
    text = path.read_text()
    assert "\nevidence:\n  dsn_env: CITYGUARD_EVIDENCE_DSN\n" in text
    path.write_text(
        text.replace("\nevidence:\n  dsn_env: CITYGUARD_EVIDENCE_DSN\n", f"\nevidence:\n{evidence}")
    )
    return path


def line_of(path: Path, key: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(f"  {key}:"))


def test_dsn_from_a_variable_is_registered_for_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    site = load_site(EXAMPLE / "site.yml")
    monkeypatch.setenv("CITYGUARD_EVIDENCE_DSN", "postgresql://cg:Tr0ub4dor%26x@db/evidence")
    dsn = site.evidence_dsn()
    assert dsn == "postgresql://cg:Tr0ub4dor%26x@db/evidence"
    assert redact(f"failed: {dsn}") == "failed: (redacted)"
    assert redact("password Tr0ub4dor&x rejected") == "password (redacted) rejected"
    assert redact("password Tr0ub4dor%26x rejected") == "password (redacted) rejected"


def test_an_empty_variable_means_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGUARD_EVIDENCE_DSN", "")
    assert load_site(EXAMPLE / "site.yml").evidence_dsn() is None


def test_dsn_from_a_file_relative_to_the_site(tmp_path: Path) -> None:
    path = site_with_evidence(tmp_path, "  dsn_file: secret/dsn\n")
    (path.parent / "secret").mkdir()
    (path.parent / "secret" / "dsn").write_text("host=db password=file-pw-1 dbname=evidence\n")
    site = load_site(path)
    assert site.evidence_dsn() == "host=db password=file-pw-1 dbname=evidence"
    assert redact("auth failed for file-pw-1") == "auth failed for (redacted)"


def test_a_missing_dsn_file_is_a_located_error(tmp_path: Path) -> None:
    path = site_with_evidence(tmp_path, "  dsn_file: secret/dsn\n")
    site = load_site(path)  # read only when used: loading does not need the file
    with pytest.raises(SecretError) as caught:
        site.evidence_dsn()
    assert caught.value.lines() == [
        f"{path}:{line_of(path, 'dsn_file')}: evidence.dsn_file: "
        f"file {path.parent / 'secret' / 'dsn'}: not found"
    ]
    assert caught.value.exit_code == 2


def test_dsn_from_a_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = site_with_evidence(tmp_path, "  dsn_credential: evidence-dsn\n")
    site = load_site(path)
    with pytest.raises(SecretError, match="CREDENTIALS_DIRECTORY is unset"):
        site.evidence_dsn()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    with pytest.raises(SecretError) as caught:
        site.evidence_dsn()
    assert str(caught.value) == (
        f"{path}:{line_of(path, 'dsn_credential')}: evidence.dsn_credential: "
        "systemd credential evidence-dsn: not found"
    )
    (credentials / "evidence-dsn").write_text("postgresql://cg:cred-pw-2@db/evidence")
    assert site.evidence_dsn() == "postgresql://cg:cred-pw-2@db/evidence"


def test_an_unescaped_at_in_the_password_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = load_site(EXAMPLE / "site.yml")
    monkeypatch.setenv("CITYGUARD_EVIDENCE_DSN", "postgresql://cg:p4ss@w0rd@db/evidence")
    with pytest.raises(SecretError) as caught:
        site.evidence_dsn()
    message = str(caught.value)
    assert message.endswith(
        "evidence.dsn_env: the DSN's password contains '@' or '/': write them percent-encoded "
        "(%40, %2F)"
    )
    assert "p4ss" not in message and "w0rd" not in message
    # registered anyway: if the DSN reached a driver, its tail ("w0rd@db") would show up
    assert redact("failed to resolve host 'w0rd@db'") == "failed to resolve host '(redacted)db'"


def test_make_secret_ref_for_an_area() -> None:
    class Broker(BaseModel):
        admin_password_env: str | None = None
        admin_password_file: str | None = None
        admin_password_credential: str | None = None

    root = Path("/etc/city")
    assert make_secret_ref(Broker(), "admin_password", root=root) is None
    assert make_secret_ref(
        Broker(admin_password_file="kc"), "admin_password", root=root
    ) == SecretRef.file(root / "kc")
    assert make_secret_ref(
        Broker(admin_password_credential="kc"), "admin_password", root=root
    ) == SecretRef.credential("kc")


def test_site_secret_ref_is_located() -> None:
    site = load_site(EXAMPLE / "site.yml")

    class Settings(BaseModel):
        token_env: str | None = "CITY_TOKEN"

    ref = site.secret_ref(("evidence",), Settings(), "token")
    assert ref == SecretRef.env("CITY_TOKEN")
    assert ref is not None and ref.origin.endswith(": evidence.token_env")
