"""The backup agent a source host runs from its systemd timer (``backup_runs_on: source-host``).

``cityguard backup deploy`` copies this file to the host with a job file (every command, built
by ``cityguard.drill.push`` with the same builders as a backup the control node pulls) and a
root-only credentials file. The agent gives the set an id, runs the job's commands, records
row counts, the newest row time and a sample of file hashes, and stores the manifest as its
own snapshot, so a drill verifies a pushed backup exactly as a pulled one. It prints one line
per step and, on failure, one line saying what failed; secrets never reach argv or output.

The row-count and hash parsers are shared with the engine (``cityguard.drill.remote``), so what
a backup records and what a drill compares are read the same way.

Standard library only, Python 3.8 and later. Usage: ``cityguard_backup_agent.py JOB CREDENTIALS``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the hosts' Python may be older than the engine's
    from collections.abc import Callable

    #: runs argv (what it is for, standard input, seconds left) and returns standard output
    Runner = Callable[[list[str], str, str | None, float], str]

SET_PLACEHOLDER = "@SET@"
UTC_ZONE = timezone.utc  # noqa: UP017 (datetime.UTC needs 3.11; hosts may run 3.8)
JOB_FORMAT = 1
MANIFEST_FORMAT = 1
# what restic writes when a backend request fails and it tries again
RETRY_MARKER = "retrying after"


class AgentError(Exception):
    """A step failed: one line for the journal, exit code 1."""


def parse_row_counts(output: str) -> dict[str, int]:
    """``table|count`` lines (psql -At -F '|') → {table: count}."""
    counts: dict[str, int] = {}
    for line in output.strip().splitlines():
        fields = line.split("|")
        if len(fields) == 2 and fields[1].strip().isdigit():
            counts[fields[0]] = int(fields[1])
    return counts


def parse_sha256sum(output: str) -> dict[str, str]:
    """``hash  path`` lines → {path: hash}."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        digest, sep, path = line.partition("  ")
        if sep and len(digest) == 64:
            found[path] = digest
    return found


def backup_summary(stdout: str) -> dict[str, Any]:
    """The last ``summary`` message of ``restic backup --json``."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("message_type") == "summary" and message.get("snapshot_id"):
            return dict(message)
    raise AgentError("restic backup printed no summary with a snapshot id")


def with_set(argv: list[str], set_id: str) -> list[str]:
    return [part.replace(SET_PLACEHOLDER, set_id) for part in argv]


def new_set_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Agent:
    """Runs one job; ``run`` executes a command and returns its standard output."""

    def __init__(self, job: dict[str, Any], run: Runner, timeout_s: float) -> None:
        if job.get("format") != JOB_FORMAT:
            raise AgentError(f"job format {job.get('format')!r} is not {JOB_FORMAT}")
        self.job = job
        self.run_command = run
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s

    def run(self, argv: list[str], what: str, input_text: str | None = None) -> str:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AgentError(f"{what}: the backup did not finish within {self.timeout_s:.0f} s")
        return self.run_command(argv, what, input_text, left)

    def shell(self, command: str, what: str) -> str:
        return self.run(["sh", "-c", command], what)

    def backup(self, now: datetime, say: Callable[[str], None]) -> dict[str, Any]:
        """One backup set; returns its manifest (already stored in the repository)."""
        set_id = new_set_id(now)
        system = self.job["system"]
        self.run(self.job["unlock"], "removing stale locks")
        records: dict[str, Any] = {}
        for source in self.job["sources"]:
            record = records[source["name"]] = self.source(source, set_id)
            say(
                f"{system}: {source['name']}: snapshot {record['snapshot'][:8]}, "
                f"{record['bytes']} bytes"
            )
        manifest = {
            "format": MANIFEST_FORMAT,
            "system": system,
            "set_id": set_id,
            "created_at": datetime.now(UTC_ZONE).isoformat(),
            "sources": records,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True)
        self.run(with_set(self.job["manifest"], set_id), "recording the backup manifest", text)
        self.run(self.job["forget"], "applying the retention")
        say(f"{system}: set {set_id} done")
        return manifest

    def source(self, source: dict[str, Any], set_id: str) -> dict[str, Any]:
        name = source["name"]
        record: dict[str, Any] = {
            "kind": source["kind"],
            "path": source["path"],
            "host": source["host"],
            "row_counts": {},
            "newest_row": None,
            "hashes": {},
            "globals_snapshot": None,
            "globals_path": None,
        }
        if source.get("counts"):
            record["row_counts"] = parse_row_counts(
                self.shell(source["counts"], f"counting rows of {name}")
            )
        if source.get("newest"):
            newest = self.shell(source["newest"], f"newest row of {name}").strip()
            record["newest_row"] = newest or None
        if source.get("hashes"):
            record["hashes"] = parse_sha256sum(
                self.shell(source["hashes"], f"hashing a sample of {name}")
            )
        if source.get("globals"):
            done = self.run(with_set(source["globals"], set_id), f"backing up the roles of {name}")
            record["globals_snapshot"] = backup_summary(done)["snapshot_id"]
            record["globals_path"] = source["globals_path"]
        summary = backup_summary(self.run(with_set(source["backup"], set_id), f"backing up {name}"))
        record["snapshot"] = summary["snapshot_id"]
        record["bytes"] = int(summary.get("total_bytes_processed", 0))
        return record


def _readable(line: str) -> str:
    """restic --json writes its final error as JSON (``exit_error``): keep its message."""
    if line.startswith("{"):
        try:
            return str(json.loads(line).get("message") or line)
        except (ValueError, AttributeError):
            return line
    return line


def _stderr_gist(stderr: str) -> tuple[int, str]:
    """How often restic retried a backend request, and its last other error line."""
    lines = [_readable(line.strip()) for line in stderr.splitlines() if line.strip()]
    retries = sum(RETRY_MARKER in line for line in lines)
    errors = [line for line in lines if RETRY_MARKER not in line]
    return retries, (errors or lines or ["no error output"])[-1]


def failure_line(what: str, returncode: int, stderr: str) -> str:
    """One line: what failed, the exit code, restic's last error and how often it retried."""
    retries, last = _stderr_gist(stderr)
    extra = f" after {retries} retries" if retries else ""
    return f"{what}: exit code {returncode}{extra}: {last}"


def stopped_line(what: str, limit_s: float, stderr: str) -> str:
    """One line for a command stopped at the backup's time limit (a repository that stops
    answering makes restic retry each request for about 15 minutes)."""
    retries, last = _stderr_gist(stderr)
    if not retries:
        return f"{what}: stopped at the backup's time limit ({limit_s:.0f} s)"
    return (
        f"{what}: the repository stopped answering: stopped at the backup's time limit "
        f"({limit_s:.0f} s) after {retries} retries (last: {last})"
    )


def subprocess_runner(env: dict[str, str], limit_s: float) -> Runner:
    """Runs commands with the credentials in their environment; ``limit_s`` is the whole
    backup's time limit, named when a command is stopped at it."""

    def run(argv: list[str], what: str, input_text: str | None, timeout: float) -> str:
        try:
            done = subprocess.run(
                argv,
                input=input_text if input_text is not None else "",
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as stopped:
            stderr = stopped.stderr or ""
            if isinstance(stderr, bytes):
                stderr = stderr.decode("utf-8", "replace")
            raise AgentError(stopped_line(what, limit_s, stderr)) from None
        except OSError as exc:
            raise AgentError(f"{what}: {argv[0]}: {exc.strerror}") from None
        if done.returncode != 0:
            raise AgentError(failure_line(what, done.returncode, done.stderr))
        return done.stdout

    return run


def load_json(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise AgentError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AgentError(f"the {what} {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AgentError(f"the {what} {path} is not a JSON object")
    return data


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: cityguard_backup_agent.py JOB CREDENTIALS", file=sys.stderr)
        return 2
    try:
        job = load_json(argv[1], "job file")
        credentials = load_json(argv[2], "credentials file")
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
        }
        env.update({str(k): str(v) for k, v in credentials.items()})
        limit_s = float(job.get("timeout_s", 6 * 3600))
        agent = Agent(job, subprocess_runner(env, limit_s), limit_s)
        agent.backup(datetime.now(UTC_ZONE), lambda line: print(line, flush=True))
    except AgentError as error:
        print(f"backup of {argv[1]} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
