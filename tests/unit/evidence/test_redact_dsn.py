"""DSN redaction: a password must not survive into anything cityguard prints or logs."""

from __future__ import annotations

import pytest

from cityguard.evidence.postgres import redact_dsn, scrub

CASES = [
    ("postgresql://evidence:s3cr%40t@db.city.example:5432/evidence?sslmode=require",
     "postgresql://evidence:***@db.city.example:5432/evidence?sslmode=require"),
    ("postgres://evidence:pa:ss@db1,db2/evidence", "postgres://evidence:***@db1,db2/evidence"),
    ("postgresql://evidence@db/evidence?password=s3cret&sslmode=verify-full",
     "postgresql://evidence@db/evidence?password=***&sslmode=verify-full"),
    ("postgresql://evidence:un@escaped/at@db/evidence", "postgresql://evidence:***@db/evidence"),
    ("postgresql://user:p@ss@host/db", "postgresql://user:***@host/db"),
    ("postgresql://evidence@db/evidence", "postgresql://evidence@db/evidence"),
    ("postgresql:///evidence?host=/run/postgresql", "postgresql:///evidence?host=/run/postgresql"),
    ("host=db port=5432 user=evidence password=s3cret dbname=evidence",
     "host=db port=5432 user=evidence password=*** dbname=evidence"),
    ("host=db password = 'with space \\' and quote' dbname=evidence",
     "host=db password = *** dbname=evidence"),
    ("host=db PASSWORD='unterminated dbname=x", "host=db PASSWORD=***"),
    ("host=db passfile=/root/.pgpass dbname=evidence",
     "host=db passfile=/root/.pgpass dbname=evidence"),
]  # fmt: skip


@pytest.mark.parametrize(("dsn", "expected"), CASES)
def test_redact_dsn(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://u:s3cr%40t@db/x", "s3cr@t"),
        ("postgresql://u:s3cr%40t@db/x", "s3cr%40t"),
        ("postgresql://u@db/x?password=query%2Fpw", "query/pw"),
        ("host=db password='it\\'s secret'", "it's secret"),
        ("host=db password=plain", "plain"),
    ],
)
def test_scrub_removes_every_spelling(dsn: str, secret: str) -> None:
    message = f'connection failed: FATAL: role "u" with "{secret}" rejected'
    scrubbed = scrub(message, dsn)
    assert secret not in scrubbed
    assert scrubbed.startswith("connection failed: FATAL:")
    assert "***" in scrubbed


def test_scrub_hides_the_tail_libpq_takes_for_the_host() -> None:
    # libpq ends the user information at the first "@": for user:p@ss@host it connects to the
    # host "ss@host" and names it in its error, so the tail of the password must go too
    dsn = "postgresql://user:p@ss@host/db"
    message = "failed to resolve host 'ss@host': [Errno -2] Name or service not known"
    scrubbed = scrub(message, dsn)
    assert "ss@host" not in scrubbed
    assert scrubbed == "failed to resolve host '***host': [Errno -2] Name or service not known"
