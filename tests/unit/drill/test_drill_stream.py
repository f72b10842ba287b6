"""A restore streamed from restic into a program on the target: restic's typed error comes
first (it explains the consumer's cut-short input), else the consumer's own last line; the
password reaches restic only. A stand-in restic plays the failures (error paths only)."""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityguard.core.process import ProcessError
from cityguard.core.secrets import SecretRef, forget_secrets
from cityguard.drill import restic
from cityguard.drill.runner import Restic

PASSWORD = "stream-test-password-5f1c"
CONSUMER_FAILS = [
    sys.executable,
    "-c",
    "import sys; sys.stdin.buffer.read(); "
    "sys.stderr.write('pg_restore: error: input file is too short\\n'); sys.exit(1)",
]
CONSUMER_WITHOUT_PASSWORD = [
    sys.executable,
    "-c",
    "import os, sys; sys.stdin.buffer.read(); "
    "sys.exit('the consumer saw the password' if 'RESTIC_PASSWORD' in os.environ else 0)",
]


def fake_restic(tmp_path: Path, body: str) -> str:
    script = tmp_path / "restic"
    script.write_text(f"#!{sys.executable}\nimport os, sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def repository(binary: str) -> Restic:
    return Restic(restic.Repo("/nonexistent/repo", binary), SecretRef.env("CG_STREAM_TEST_PW"))


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CG_STREAM_TEST_PW", PASSWORD)
    yield
    forget_secrets()


def test_a_wrong_password_is_restics_typed_error_not_the_consumers(tmp_path: Path) -> None:
    binary = fake_restic(
        tmp_path,
        "sys.stdout.write('PGDMP partial'); "
        'sys.stderr.write(\'{"message_type":"exit_error","code":12,'
        '"message":"Fatal: wrong password or no key found"}\\n\'); sys.exit(12)',
    )
    with pytest.raises(restic.WrongPassword) as raised:
        repository(binary).stream(("dump", "latest", "/x"), CONSUMER_FAILS, "restoring portal")
    assert str(raised.value) == "restoring portal: wrong repository password"
    assert PASSWORD not in str(raised.value)


def test_a_failing_consumer_is_named_by_its_last_line(tmp_path: Path) -> None:
    binary = fake_restic(tmp_path, "sys.stdout.buffer.write(b'PGDMP' * 1000)")
    with pytest.raises(ProcessError) as raised:
        repository(binary).stream(("dump", "latest", "/x"), CONSUMER_FAILS, "restoring portal")
    assert str(raised.value) == "restoring portal: pg_restore: error: input file is too short"


def test_the_stream_is_counted_and_the_password_stays_with_restic(tmp_path: Path) -> None:
    binary = fake_restic(
        tmp_path,
        f"assert os.environ['RESTIC_PASSWORD'] == {PASSWORD!r}; sys.stdout.write('x' * 4096)",
    )
    heard: list[int] = []
    moved = repository(binary).stream(
        ("dump",), CONSUMER_WITHOUT_PASSWORD, "restoring", on_bytes=heard.append
    )
    assert moved == 4096 and heard[-1] == 4096


def test_a_missing_restic_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(restic.ResticError) as raised:
        repository(str(tmp_path / "absent")).stream(("dump",), CONSUMER_FAILS, "restoring")
    assert "restic not found at" in str(raised.value)
