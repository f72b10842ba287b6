"""Secret references read only when used, and a registry that hides every secret revealed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityguard.core.errors import UsageError
from cityguard.core.secrets import (
    REDACTED,
    SecretError,
    SecretRef,
    SecretSource,
    dsn_passwords,
    dsn_problem,
    forget_secrets,
    redact,
    redact_environment,
    register_dsn,
    register_secret,
    scrub_runner_command,
)


@pytest.fixture(autouse=True)
def _empty_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    forget_secrets()
    yield
    forget_secrets()


def test_env_ref_reads_at_use_and_registers(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = SecretRef.env("CITY_TEST_SECRET", "site.yml:3: x.token_env")
    assert not ref.is_set()
    monkeypatch.setenv("CITY_TEST_SECRET", "first-value")
    assert ref.is_set()
    monkeypatch.setenv("CITY_TEST_SECRET", "rotated-value")
    assert ref.reveal() == "rotated-value"  # read now, not when the reference was made
    assert redact("token rotated-value, old first-value") == f"token {REDACTED}, old first-value"


def test_missing_env_var_is_a_located_usage_error() -> None:
    ref = SecretRef.env("CITY_TEST_UNSET", "site.yml:3: x.token_env")
    with pytest.raises(SecretError) as caught:
        ref.reveal()
    assert isinstance(caught.value, UsageError)
    assert caught.value.lines() == ["site.yml:3: x.token_env: CITY_TEST_UNSET is unset"]


def test_empty_env_var_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITY_TEST_EMPTY", "")
    with pytest.raises(SecretError, match="CITY_TEST_EMPTY is unset"):
        SecretRef.env("CITY_TEST_EMPTY").reveal()


def test_file_ref_strips_the_newline(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("file-secret-1\n")
    ref = SecretRef.file(secret)
    assert ref.is_set()
    assert ref.reveal() == "file-secret-1"
    assert redact("got file-secret-1") == f"got {REDACTED}"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_text("\n"), "is empty"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8 text"),
    ],
)
def test_unreadable_file_is_a_clear_error(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / "pw"
    make(path)  # type: ignore[operator]
    with pytest.raises(SecretError) as caught:
        SecretRef.file(path, "site.yml:9: evidence.dsn_file").reveal()
    assert str(caught.value) == f"site.yml:9: evidence.dsn_file: file {path}: {message}"


def test_credential_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = SecretRef.credential("evidence-dsn", "site.yml:9: evidence.dsn_credential")
    assert not ref.is_set()
    with pytest.raises(SecretError, match="CREDENTIALS_DIRECTORY is unset"):
        ref.reveal()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(SecretError, match="systemd credential evidence-dsn: not found"):
        ref.reveal()
    (tmp_path / "evidence-dsn").write_text("credential-secret-3")
    assert ref.is_set()
    assert ref.reveal() == "credential-secret-3"
    assert redact("credential-secret-3") == REDACTED


@pytest.mark.parametrize(
    ("source", "name"),
    [
        (SecretSource.ENV, "1BAD"),
        (SecretSource.ENV, "A-B"),
        (SecretSource.FILE, ""),
        (SecretSource.CREDENTIAL, "../etc/shadow"),
        (SecretSource.CREDENTIAL, ".."),
    ],
)
def test_bad_reference_names_are_refused(source: SecretSource, name: str) -> None:
    with pytest.raises(ValueError):
        SecretRef(source, name)


def test_a_reference_shows_no_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITY_TEST_SECRET", "never-shown-4")
    ref = SecretRef.env("CITY_TEST_SECRET")
    ref.reveal()
    assert "never-shown-4" not in repr(ref)
    assert ref.describe() == "environment variable CITY_TEST_SECRET"


def test_redaction_replaces_longest_first() -> None:
    register_secret("abc-secret")
    register_secret("abc-secret-and-more")
    assert redact("x abc-secret-and-more y abc-secret z") == f"x {REDACTED} y {REDACTED} z"


def test_redaction_covers_url_encoded_forms() -> None:
    register_secret("p@ss w/rd&x")
    assert redact("dsn p%40ss%20w%2Frd%26x") == f"dsn {REDACTED}"
    assert redact("form p%40ss+w%2Frd%26x") == f"form {REDACTED}"
    assert redact("path p%40ss%20w/rd%26x") == f"path {REDACTED}"
    assert redact("raw p@ss w/rd&x") == f"raw {REDACTED}"


def test_empty_secret_is_ignored_and_text_without_secrets_is_unchanged() -> None:
    register_secret("")
    assert redact("nothing to hide") == "nothing to hide"


def test_dsn_passwords_every_spelling() -> None:
    assert dsn_passwords("postgresql://u:s3cr%40t@db/x") == {"s3cr%40t", "s3cr@t"}
    assert dsn_passwords("postgresql://u:p@ss@host/db") == {"p@ss", "ss@"}
    assert dsn_passwords("postgresql://u@db/x?password=q%2Fpw") == {"q%2Fpw", "q/pw"}
    assert dsn_passwords("host=db password='it\\'s secret'") == {"'it\\'s secret'", "it's secret"}
    assert dsn_passwords("postgresql://u@db/x") == set()


def test_dsn_problem_names_no_password() -> None:
    assert dsn_problem("postgresql://u:s3cr%40t@db/x") is None
    assert dsn_problem("host=db password=a@b") is None
    for dsn in ("postgresql://u:p@ss@host/db", "postgres://u:pa/ss@host/db"):
        problem = dsn_problem(dsn)
        assert problem is not None and "ss" not in problem.replace("ssword", "")


def test_register_dsn_hides_the_password_as_libpq_shows_it() -> None:
    register_dsn("postgresql://evidence:pa55@word@db.city/evidence")
    message = 'failed to resolve host "word@db.city": Name or service not known'
    assert "word" not in redact(message)
    assert redact("postgresql://evidence:pa55@word@db.city/evidence") == REDACTED


def test_redact_environment_hides_secret_names_and_registered_values() -> None:
    register_secret("registered-5")
    env = {"PGPASSWORD": "x", "API_TOKEN": "y", "HOME": "/root", "NOTE": "uses registered-5"}
    assert redact_environment(env) == {
        "PGPASSWORD": REDACTED,
        "API_TOKEN": REDACTED,
        "HOME": "/root",
        "NOTE": f"uses {REDACTED}",
    }


def test_scrub_runner_command(tmp_path: Path) -> None:
    register_secret("registered-6")
    record = {
        "command": ["ansible-playbook", "-e", "token=registered-6"],
        "cwd": "/srv",
        "env": {"CITYGUARD_EVIDENCE_DSN": "postgresql://x", "PATH": "/bin", "X": "registered-6"},
    }
    (tmp_path / "command").write_text(json.dumps(record))
    scrub_runner_command(tmp_path)
    scrubbed = json.loads((tmp_path / "command").read_text())
    assert scrubbed == {
        "command": ["ansible-playbook", "-e", f"token={REDACTED}"],
        "cwd": "/srv",
        "env": {"CITYGUARD_EVIDENCE_DSN": REDACTED, "PATH": "/bin", "X": REDACTED},
    }


def test_scrub_runner_command_without_a_record(tmp_path: Path) -> None:
    scrub_runner_command(tmp_path)
    assert not (tmp_path / "command").exists()
