"""restic, as data: argv builders, parsers of its ``--json`` output, and its exit codes.

Nothing here runs anything (``runner.py`` does). Every builder returns a tuple of arguments to
append to ``Repo.base()``; the password never appears in them (restic reads it from
``RESTIC_PASSWORD`` in the environment the runner passes). Exit codes are those of the pinned
version (0.17 and later): 10 repository missing, 11 lock failed, 12 wrong password, 3 a source
could not be read (the snapshot exists but is incomplete); any other non-zero code is a failure.

A repository that stops answering does not end restic: it repeats each failed request for about
15 minutes, printing one plain line per attempt on standard error (also with ``--json``). When
cityguard stops it at its time limit, ``parse_retries`` counts those lines and
``stopped_message`` says in one line what happened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.core.errors import CityguardError

RESTIC_VERSION = "0.19.1"
#: How long a command waits for another process's lock before giving up (exit code 11).
RETRY_LOCK = "2m"

# Tags cityguard puts on every snapshot it makes (restic tags cannot contain a comma).
TAG_SYSTEM = "cg-system="
TAG_SET = "cg-set="
TAG_PART = "cg-part="
MANIFEST_PART = "manifest"


def restic_binary(cache: Path) -> Path:
    """Where tools/components/restic.sh puts the pinned binary under the cache directory."""
    return cache / "go" / f"bin-restic-{RESTIC_VERSION}" / "restic"


@dataclass(frozen=True)
class Repo:
    """A repository as restic addresses it (a local path, or ``s3:http://host/bucket/prefix``)."""

    location: str
    binary: str = "restic"
    cache_dir: str | None = None

    def base(self) -> tuple[str, ...]:
        cache = ("--cache-dir", self.cache_dir) if self.cache_dir else ("--no-cache",)
        return (self.binary, "--repo", self.location, "--json", *cache)


# --- argv builders ---------------------------------------------------------------------------


def init_args() -> tuple[str, ...]:
    return ("init",)


def cat_config_args() -> tuple[str, ...]:
    """Cheapest call that proves the repository exists and the password opens it."""
    return ("cat", "config")


def unlock_args() -> tuple[str, ...]:
    """Removes only stale locks (dead process on this host, or older than 30 minutes)."""
    return ("unlock",)


def list_locks_args() -> tuple[str, ...]:
    return ("list", "locks", "--no-lock")


def tag_args(tags: Iterable[str]) -> tuple[str, ...]:
    args: list[str] = []
    for tag in tags:
        if "," in tag or not tag:
            raise ValueError(f"restic tag {tag!r} is empty or contains a comma")
        args += ["--tag", tag]
    return tuple(args)


def snapshot_tags(system: str, set_id: str, part: str) -> tuple[str, ...]:
    return (f"{TAG_SYSTEM}{system}", f"{TAG_SET}{set_id}", f"{TAG_PART}{part}")


def backup_from_command_args(
    filename: str, command: Sequence[str], *, tags: Sequence[str], host: str
) -> tuple[str, ...]:
    """Back up what ``command`` writes as one file; restic fails (no snapshot) if it fails."""
    if not command:
        raise ValueError("--stdin-from-command needs a command")
    return (*_backup_one_file_args(filename, tags, host), "--stdin-from-command", "--", *command)


def backup_stdin_args(filename: str, *, tags: Sequence[str], host: str) -> tuple[str, ...]:
    """Back up standard input as one file (the manifest)."""
    return (*_backup_one_file_args(filename, tags, host), "--stdin")


def _backup_one_file_args(filename: str, tags: Sequence[str], host: str) -> tuple[str, ...]:
    """What every one-file backup starts with: lock wait, host, tags and the file's name."""
    return (
        "backup",
        "--retry-lock",
        RETRY_LOCK,
        "--host",
        host,
        *tag_args(tags),
        "--stdin-filename",
        filename,
    )


def snapshots_args(tags: Sequence[str] = ()) -> tuple[str, ...]:
    """Snapshots carrying all of ``tags`` (restic: tags in one --tag are ANDed)."""
    return ("snapshots", "--no-lock", *(("--tag", ",".join(tags)) if tags else ()))


def check_args(read_data_subset: str | None) -> tuple[str, ...]:
    subset = ("--read-data-subset", read_data_subset) if read_data_subset else ()
    return ("check", "--retry-lock", RETRY_LOCK, *subset)


def dump_args(snapshot_id: str, path: str, target: str | None = None) -> tuple[str, ...]:
    """Write one file of a snapshot to ``target`` (a file on this machine), else to standard
    output (streamed into a program on the restore target)."""
    into = ("--target", target) if target is not None else ()
    return ("dump", "--no-lock", *into, snapshot_id, path)


def forget_args(system: str, keep: Mapping[str, int], *, prune: bool) -> tuple[str, ...]:
    """Apply the retention to one system's snapshots, grouped by part."""
    keeps: list[str] = []
    for name, count in keep.items():
        keeps += [f"--{name.replace('_', '-')}", str(count)]
    return (
        "forget",
        "--retry-lock",
        RETRY_LOCK,
        "--tag",
        f"{TAG_SYSTEM}{system}",
        "--group-by",
        "host,paths",
        *keeps,
        *(("--prune",) if prune else ()),
    )


# --- parsers ---------------------------------------------------------------------------------


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of restic's line-delimited output; other lines are skipped."""
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def parse_time(text: str) -> datetime:
    """restic's RFC 3339 times with up to nanoseconds (``...00.6668671Z``) as aware UTC."""
    value = text.strip().replace("Z", "+00:00")
    head, dot, rest = value.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{(digits + '000000')[:6]}{zone}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class BackupSummary:
    snapshot_id: str
    bytes_processed: int
    data_added: int
    files: int
    duration_s: float


def parse_backup(stdout: str) -> BackupSummary:
    for message in reversed(json_lines(stdout)):
        if message.get("message_type") == "summary":
            snapshot = message.get("snapshot_id")
            if not snapshot:
                break
            return BackupSummary(
                snapshot_id=str(snapshot),
                bytes_processed=int(message.get("total_bytes_processed", 0)),
                data_added=int(message.get("data_added", 0)),
                files=int(message.get("total_files_processed", 0)),
                duration_s=float(message.get("total_duration", 0.0)),
            )
    raise ResticError("restic backup: no summary with a snapshot id in its output")


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime
    paths: tuple[str, ...]
    tags: tuple[str, ...]
    hostname: str
    size: int = 0

    def tag_value(self, prefix: str) -> str | None:
        for tag in self.tags:
            if tag.startswith(prefix):
                return tag[len(prefix) :]
        return None


def parse_snapshots(stdout: str) -> list[Snapshot]:
    """``restic snapshots --json``: oldest first, as restic lists them."""
    try:
        data = json.loads(stdout or "[]")
    except ValueError as exc:
        raise ResticError(f"restic snapshots: unreadable output ({exc})") from None
    if not isinstance(data, list):
        raise ResticError("restic snapshots: output is not a list")
    found = []
    for item in data:
        summary = item.get("summary") or {}
        found.append(
            Snapshot(
                id=str(item["id"]),
                time=parse_time(str(item["time"])),
                paths=tuple(item.get("paths") or ()),
                tags=tuple(item.get("tags") or ()),
                hostname=str(item.get("hostname", "")),
                size=int(summary.get("total_bytes_processed", 0)),
            )
        )
    return sorted(found, key=lambda s: s.time)


@dataclass(frozen=True)
class CheckSummary:
    errors: int
    broken_packs: tuple[str, ...]
    messages: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.broken_packs


def parse_check(stdout: str, stderr: str = "") -> CheckSummary:
    errors = 0
    packs: list[str] = []
    messages: list[str] = []
    for message in json_lines(stdout) + json_lines(stderr):
        kind = message.get("message_type")
        if kind == "summary":
            errors = int(message.get("num_errors", 0) or 0)
            packs = [str(p) for p in message.get("broken_packs") or []]
        elif kind == "error":
            text = message.get("message") or (message.get("error") or {}).get("message")
            if text:
                messages.append(str(text))
        elif kind == "exit_error" and message.get("message"):
            messages.append(str(message["message"]))
    if not errors and messages:
        errors = len(messages)
    return CheckSummary(errors, tuple(packs), tuple(messages))


def exit_message(stderr: str) -> str | None:
    """The message of restic's final ``exit_error`` (``Fatal: ...``), first line only."""
    for message in reversed(json_lines(stderr)):
        if message.get("message_type") == "exit_error" and message.get("message"):
            return str(message["message"]).splitlines()[0].removeprefix("Fatal: ")
    for message in reversed(json_lines(stderr)):
        if message.get("message_type") == "error":
            text = (message.get("error") or {}).get("message")
            if text:
                return str(text).splitlines()[0]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("Fatal: ") if lines else None


# --- a restic stopped at its time limit --------------------------------------------------------

#: restic 0.19's line for a backend request it repeats, e.g. ``Save(<data/798e3df6c9>) returned
#: error, retrying after 1.009245942s: client.PutObject: Put "http://...": dial tcp ...``.
_RETRYING = re.compile(
    r"^(?P<request>\S.*?) returned error, retrying after (?P<delay>\S+): (?P<error>.+)$"
)
#: Go's ``url.Error`` prefix (``Put "http://host/bucket/data/79/798e...": ``): the object's URL
#: says nothing the operator needs and would make the line long.
_URL_ERROR = re.compile(r'\b[A-Z]+[a-z]* "[a-z][a-z0-9+.-]*://[^"]*": ')


@dataclass(frozen=True)
class Retries:
    """The repeated backend requests restic reported in the output cityguard kept of it.

    ``complete`` is False when only the end of the output was kept: ``count`` is then the
    number seen there, a lower bound."""

    count: int = 0
    last_error: str | None = None
    complete: bool = True


def short_backend_error(text: str) -> str:
    """A backend error without the object URLs Go puts in it (``client.PutObject: dial tcp
    127.0.0.1:9000: connect: connection refused``), on one line."""
    return " ".join(_URL_ERROR.sub("", text).split())


def parse_retries(lines: Iterable[str], *, complete: bool = True) -> Retries:
    """Count restic's ``... returned error, retrying after ...`` lines; the last one's error."""
    count = 0
    last: str | None = None
    for line in lines:
        found = _RETRYING.match(line.strip())
        if found:
            count += 1
            last = short_backend_error(found["error"])
    return Retries(count, last, complete)


def stopped_message(what: str, seconds: float, retries: Retries, *, limit: str = "restic") -> str:
    """One line for a restic stopped because ``limit`` (``restic`` or ``the backup``) did not
    finish within ``seconds``; with the retries seen, the repository stopped answering."""
    shown = f"{seconds:.0f}" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}"
    within = f"{limit} did not finish within {shown} s"
    if not retries.count:
        return f"{what}: {within}; restic was stopped"
    bound = "" if retries.complete else "at least "
    plural = "retry" if retries.count == 1 else "retries"
    last = f" (last error: {retries.last_error})" if retries.last_error else ""
    return (
        f"{what}: the repository stopped answering: {within}; restic was stopped after "
        f"{bound}{retries.count} {plural}{last}"
    )


# --- exit codes ------------------------------------------------------------------------------


class ResticError(CityguardError):
    """restic failed; a step could not run (exit code 3)."""

    returncode: int | None = None

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class RepositoryMissing(ResticError):
    pass


class RepositoryLocked(ResticError):
    pass


class WrongPassword(ResticError):
    pass


class SourceUnreadable(ResticError):
    pass


class TimedOut(ResticError):
    """restic did not finish within its time limit and was stopped (exit code 3)."""

    def __init__(self, message: str, retries: Retries | None = None) -> None:
        super().__init__(message)
        self.retries = retries or Retries()


_TYPED: dict[int, tuple[type[ResticError], str]] = {
    10: (RepositoryMissing, "repository does not exist (run 'cityguard backup init')"),
    11: (RepositoryLocked, "repository is locked by a live process (waited " + RETRY_LOCK + ")"),
    12: (WrongPassword, "wrong repository password"),
    3: (SourceUnreadable, "a source could not be read completely"),
}


def error_for(returncode: int, stderr: str, what: str) -> ResticError:
    """The typed error for a non-zero exit code of restic doing ``what``."""
    detail = exit_message(stderr)
    known = _TYPED.get(returncode)
    if known is not None:
        kind, meaning = known
        return kind(f"{what}: {meaning}", returncode)
    reason = detail or f"exit code {returncode}"
    plain = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.lstrip().startswith("{")
    ]
    if plain and plain[-1] not in reason:
        reason = f"{reason} ({plain[-1]})"  # e.g. what pg_dump said before it failed
    return ResticError(f"{what}: restic failed (exit code {returncode}): {reason}", returncode)
