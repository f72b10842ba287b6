"""The shared evidence store: PostgreSQL, for sites where several operators record runs.

The DSN usually carries a password. It is used once to connect and then dropped; whatever is
shown (repr, log lines, error messages) uses the redacted form, and driver error messages
are scrubbed of the password before they are passed on.
"""

from __future__ import annotations

import logging
import re

import psycopg

from cityguard.core.secrets import dsn_passwords
from cityguard.evidence.db import Cursor
from cityguard.evidence.errors import EvidenceError
from cityguard.evidence.store import EvidenceStore

logger = logging.getLogger(__name__)

MASK = "***"
_URI = re.compile(r"^(?P<scheme>\s*postgres(?:ql)?://)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
# key=value form: password=x, password = 'quoted \' value' (an unterminated quote runs to end)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|\S*)", re.I)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<value>[^&#]*)", re.IGNORECASE)
#: pg_advisory_xact_lock key serialising migrations between operators opening at once
_MIGRATION_LOCK = 0x63697479_67756172  # "cityguar"


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***, in URI or key=value form.

    Errs on the side of hiding: in a URI everything between "user:" and the last "@" is
    treated as the password, so an unescaped "@" or "/" in it cannot leak a fragment.
    """
    match = _URI.match(dsn)
    if match is None:
        return _KV_PASSWORD.sub(lambda m: m["key"] + MASK, dsn)
    rest = match["rest"]
    userinfo, at, hosts = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{MASK}@{hosts}" if colon else rest
    return match["scheme"] + _QUERY_PASSWORD.sub(lambda m: m["key"] + MASK, rest)


def _passwords(dsn: str) -> set[str]:
    """Every spelling of the DSN's password(s) that could show up in a driver message.

    Including the tail of a password with an unescaped "@", which libpq reads as part of the
    host name ("ss@host" for user:p@ss@host) and so names in its errors.
    """
    return dsn_passwords(dsn)


def scrub(text: str, dsn: str) -> str:
    """text with the DSN's password removed, however it was spelled."""
    for secret in sorted(_passwords(dsn), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class PostgresStore(EvidenceStore):
    placeholder = "%s"
    float_type = "DOUBLE PRECISION"
    begin_write = "BEGIN"
    driver_error = psycopg.Error

    def __init__(self, dsn: str) -> None:
        self._display = redact_dsn(dsn)
        logger.debug("connecting to evidence store %s", self._display)
        failure: str | None = None
        try:
            connection = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            failure = scrub(str(exc), dsn).strip()
        if failure is not None:
            # raised outside the except block so the driver's exception (whose text and
            # attributes may hold the password) is not chained onto ours
            raise EvidenceError(f"cannot connect to evidence store {self._display}: {failure}")
        super().__init__(connection)

    @property
    def location(self) -> str:
        return self._display

    def _lock_schema(self, cur: Cursor) -> None:
        self._execute(cur, "SELECT pg_advisory_xact_lock(?)", [_MIGRATION_LOCK])
