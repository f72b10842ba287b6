"""Secrets: referenced by name, read only when used, and kept out of what cityguard writes down.

Secrets reach cityguard through environment variables, files and systemd credentials
(docs/architecture.md), never through the site file, which lives in git and is shown to
auditors. A ``SecretRef`` names where a secret is; ``reveal()`` reads it at the moment it is
needed, so a rotated secret is picked up without reloading and no site object ever holds one.

Every revealed value is registered process-wide, and ``redact`` replaces each registered value
(and its URL-encoded spellings) with ``(redacted)``. Whatever cityguard prints, logs or keeps
from a tool it drove can then be passed through ``redact`` without knowing which secrets were
in play. Tools may also record their whole environment (ansible-runner writes it to
artifacts/<ident>/command), so variables whose name says they are secret are hidden as well.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from cityguard.core.errors import UsageError

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|_DSN$|_KEY$|^DSN$",
    re.IGNORECASE,
)
REDACTED = "(redacted)"
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
"""Set by systemd for a unit with LoadCredential=/SetCredential=: where its credentials are."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:-]*$")


class SecretError(UsageError):
    """A referenced secret cannot be read: unset variable, missing file or credential.

    The message says where the reference was written (``site.yml:52: evidence.dsn_env``) and
    what is missing, never any part of the value.
    """


class SecretSource(StrEnum):
    ENV = "env"
    FILE = "file"
    CREDENTIAL = "credential"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is: an environment variable, a file, or a systemd credential.

    ``origin`` says where the reference itself was written, e.g. ``site.yml:52:
    evidence.dsn_env``; it starts every error message so the operator knows what to fix.
    """

    source: SecretSource
    name: str
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.source is SecretSource.ENV and not _ENV_NAME.match(self.name):
            raise ValueError("must be an environment variable name (letters, digits, '_')")
        if self.source is SecretSource.FILE and not self.name:
            raise ValueError("must be a file path")
        if self.source is SecretSource.CREDENTIAL and (
            not _CREDENTIAL_NAME.match(self.name) or self.name in (".", "..")
        ):
            raise ValueError("must be a systemd credential name (no '/')")

    @classmethod
    def env(cls, name: str, origin: str = "") -> SecretRef:
        return cls(SecretSource.ENV, name, origin)

    @classmethod
    def file(cls, path: str | Path, origin: str = "") -> SecretRef:
        return cls(SecretSource.FILE, str(path), origin)

    @classmethod
    def credential(cls, name: str, origin: str = "") -> SecretRef:
        return cls(SecretSource.CREDENTIAL, name, origin)

    def describe(self) -> str:
        """Where the secret is, for people: never the value."""
        if self.source is SecretSource.ENV:
            return f"environment variable {self.name}"
        if self.source is SecretSource.FILE:
            return f"file {self.name}"
        return f"systemd credential {self.name}"

    def is_set(self) -> bool:
        """Whether the source exists and is not empty, without reading or registering it."""
        if self.source is SecretSource.ENV:
            return bool(os.environ.get(self.name))
        path = self._path()
        return path is not None and path.is_file()

    def reveal(self) -> str:
        """Read the secret now; register it for redaction; raise SecretError if it is missing.

        Values read from a file or credential lose surrounding whitespace (the trailing newline
        editors add). An empty value counts as missing: an empty password is never meant.
        """
        if self.source is SecretSource.ENV:
            value = os.environ.get(self.name, "")
            if not value:
                raise self._error(f"{self.name} is unset")
        else:
            value = self._read_file()
        register_secret(value)
        return value

    def _path(self) -> Path | None:
        if self.source is SecretSource.FILE:
            return Path(self.name)
        directory = os.environ.get(CREDENTIALS_DIRECTORY, "")
        return Path(directory) / self.name if directory else None

    def _read_file(self) -> str:
        path = self._path()
        if path is None:
            raise self._error(
                f"{CREDENTIALS_DIRECTORY} is unset: credential {self.name} is only there when "
                "systemd starts cityguard with LoadCredential="
            )
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise self._error(f"{self.describe()}: not found") from None
        except IsADirectoryError:
            raise self._error(f"{self.describe()}: is a directory") from None
        except PermissionError:
            raise self._error(f"{self.describe()}: permission denied") from None
        except UnicodeDecodeError:
            raise self._error(f"{self.describe()}: not UTF-8 text") from None
        except OSError as exc:
            raise self._error(f"{self.describe()}: {exc.strerror}") from None
        if not value:
            raise self._error(f"{self.describe()}: is empty")
        return value

    def _error(self, message: str) -> SecretError:
        return SecretError(f"{self.origin}: {message}" if self.origin else message)


# --- the redaction registry ------------------------------------------------------------------

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()


def register_secret(value: str) -> None:
    """Remember ``value`` (and its URL-encoded spellings) so ``redact`` hides it from now on."""
    if not value:
        return
    spellings = {value, quote(value, safe=""), quote_plus(value, safe=""), quote(value)}
    global _ordered
    with _lock:
        if spellings <= _secrets:
            return
        _secrets.update(spellings)
        # longest first, so a secret containing another is hidden whole, not in pieces
        _ordered = tuple(sorted(_secrets, key=lambda s: (-len(s), s)))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``(redacted)``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def forget_secrets() -> None:
    """Empty the registry (tests; a long-lived process that dropped every secret)."""
    global _ordered
    with _lock:
        _secrets.clear()
        _ordered = ()


# --- connection strings ----------------------------------------------------------------------

_URI = re.compile(r"^\s*postgres(?:ql)?://(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
# key=value form: password=x, password = 'quoted \' value' (an unterminated quote runs to end)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|\S*)", re.I)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<value>[^&#]*)", re.IGNORECASE)


def uri_password(dsn: str) -> str | None:
    """The password of a ``postgresql://user:password@host/db`` URI as written, or None.

    Everything between "user:" and the *last* "@" counts, so an unescaped "@" in a password
    is taken whole (libpq itself splits at the first "@"; see ``dsn_problem``).
    """
    match = _URI.match(dsn)
    if match is None:
        return None
    userinfo, at, _ = match["rest"].rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.partition(":")[2] or None


def dsn_passwords(dsn: str) -> set[str]:
    """Every spelling of a connection string's password(s) that could show up in a message.

    Covers the URI form (userinfo and ``?password=``, raw and percent-decoded) and libpq's
    key=value form (quoted or not). A URI password with an unescaped "@" is misread by libpq,
    which then names the password's tail as part of the host ("ss@host"): that tail, with its
    "@", is included too.
    """
    found: list[str] = []
    match = _URI.match(dsn)
    if match is not None:
        password = uri_password(dsn)
        if password is not None:
            found.append(password)
            if "@" in password:
                found.append(password.partition("@")[2] + "@")
        found += [m["value"] for m in _QUERY_PASSWORD.finditer(match["rest"])]
        found += [unquote(value) for value in found]
    else:
        for m in _KV_PASSWORD.finditer(dsn):
            value = m["value"]
            found.append(value)
            if value.startswith("'"):
                found.append(re.sub(r"\\(.)", r"\1", value.strip("'")))
    return {value for value in found if value and value != "@"}


def dsn_problem(dsn: str) -> str | None:
    """Why libpq would misread this DSN's password, or None; never names the password.

    libpq ends a URI's user information at the first "@" (or "/"), so such a character in the
    password must be percent-encoded, else part of the password is taken as the host and shows
    up in its error messages.
    """
    password = uri_password(dsn)
    if password is not None and ("@" in password or "/" in password):
        return "the DSN's password contains '@' or '/': write them percent-encoded (%40, %2F)"
    return None


def register_dsn(dsn: str) -> None:
    """Register a connection string and every spelling of its password for redaction."""
    register_secret(dsn)
    for password in dsn_passwords(dsn):
        register_secret(password)


# --- records other tools keep ----------------------------------------------------------------


def redact_environment(env: dict[str, str]) -> dict[str, str]:
    """Secret-named variables hidden whole; registered secrets hidden inside the others."""
    return {
        name: REDACTED if SECRET_NAME.search(name) else _redact_strings(value)
        for name, value in env.items()
    }


def scrub_runner_command(artifacts_dir: Path) -> None:
    """Redact ansible-runner's record of the run (environment, command line, directory)."""
    path = artifacts_dir / "command"
    if not path.exists():
        return
    record = json.loads(path.read_text())
    if isinstance(record, dict) and isinstance(record.get("env"), dict):
        record["env"] = redact_environment(record["env"])
    path.write_text(json.dumps(_redact_strings(record)))


def _redact_strings(data: Any) -> Any:
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, list):
        return [_redact_strings(item) for item in data]
    if isinstance(data, dict):
        return {key: _redact_strings(value) for key, value in data.items()}
    return data
