"""The edge to restic, SSH and systemd-analyze: the only module of the area that runs programs.

Everything goes through ``cityguard.core.process.run`` with argv lists built by ``restic.py``
and ``remote.py``. The repository password (and S3 keys) reach restic only in its environment
(``RESTIC_PASSWORD``, ``AWS_*``), read from their references when used and registered for
redaction, so they never appear in argv, output, logs or evidence.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from cityguard.config.inventory import Inventory
from cityguard.config.paths import cache_dir
from cityguard.core.process import TAIL_LINES, Completed, ProcessError, failed, run, run_piped
from cityguard.core.secrets import SecretRef, redact
from cityguard.drill import remote, restic
from cityguard.drill.plan import Plan

#: Long enough for a database dump of a city system; a hung step must still end.
LONG = 6 * 3600.0
SHORT = 120.0


def restic_path(configured: str | None) -> str:
    if configured:
        return configured
    return str(restic.restic_binary(cache_dir()))


def calendar_problem(expression: str) -> str | None:
    """Why ``expression`` is not a systemd OnCalendar expression (systemd-analyze), or None."""
    done = run(
        ["systemd-analyze", "calendar", expression],
        what="checking a schedule",
        timeout=30,
        check=False,
    )
    if done.ok:
        return None
    return f"'{expression}' is not a valid systemd calendar expression"


def next_elapses(expression: str, count: int = 3) -> list[str]:
    done = run(
        ["systemd-analyze", "calendar", f"--iterations={count}", expression],
        what="listing the next runs",
        timeout=30,
    )
    return [
        line.split(":", 1)[1].strip()
        for line in done.stdout.splitlines()
        if "Next elapse" in line or line.strip().startswith("Iter.")
    ]


#: Runs of a schedule read to find its longest gap: a week of runs every ten minutes, almost
#: three years of daily runs, many years of weekly or monthly ones. A schedule that runs more often
#: than that on some days only is judged on these runs.
GAP_ITERATIONS = 1000


def longest_gap(expression: str) -> timedelta | None:
    """The longest time between consecutive next runs of ``expression`` (systemd-analyze), or
    None when its runs end: fewer than ``GAP_ITERATIONS`` to come."""
    done = run(
        ["systemd-analyze", "calendar", f"--iterations={GAP_ITERATIONS}", expression],
        what="measuring the gaps of a schedule",
        timeout=30,
    )
    return gap_of(elapse_times(done.stdout), GAP_ITERATIONS)


def elapse_times(output: str) -> list[datetime]:
    """The runs ``systemd-analyze calendar --iterations=N`` lists, in order, in UTC: each
    ``Next elapse:`` or ``Iter. #k:`` line, or the ``(in UTC):`` line after it (systemd adds one
    when the local zone is not UTC); ``Next elapse: never`` lists none."""
    times: list[datetime] = []
    for line in output.splitlines():
        label, _, value = line.strip().partition(":")
        if label == "(in UTC)" and times:
            times[-1] = _utc(value)
        elif (label == "Next elapse" or label.startswith("Iter.")) and value.strip() != "never":
            times.append(_utc(value))
    return times


def _utc(value: str) -> datetime:
    """``Mon 2026-12-07 03:00:00 UTC`` (weekday, date, time, zone) → its date and time."""
    _weekday, date, time, *_zone = value.split()
    return datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def gap_of(times: Sequence[datetime], asked: int) -> timedelta | None:
    """The longest time between consecutive ``times``, or None when fewer than ``asked`` came:
    the schedule ends, so nothing keeps a lock alive after its last run (or it runs once)."""
    if len(times) < max(asked, 2):
        return None
    return max(later - earlier for earlier, later in pairwise(times))


def timed_out(
    what: str, timeout: float, output_tail: Sequence[str], errors: Sequence[str] = ()
) -> restic.TimedOut:
    """The error for a restic that ``run`` stopped at ``timeout``: the retries are counted in
    everything it wrote on standard error, else in the end of its output that
    ``ProcessError`` keeps (a lower bound when that end is full)."""
    if errors:
        retries = restic.parse_retries(errors)
    else:
        retries = restic.parse_retries(output_tail, complete=len(output_tail) < TAIL_LINES)
    return restic.TimedOut(redact(restic.stopped_message(what, timeout, retries)), retries)


@dataclass
class Restic:
    """One repository, with its password (and S3 keys) read from their references when used."""

    repo: restic.Repo
    password: SecretRef
    access_key: SecretRef | None = None
    secret_key: SecretRef | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, plan: Plan, binary: str, state_dir: Path) -> Restic:
        cache = state_dir / "restic-cache"
        repo = restic.Repo(plan.repository_location, binary, str(cache))
        return cls(repo, plan.password, plan.s3_access_key, plan.s3_secret_key)

    def env(self) -> dict[str, str]:
        env = {"RESTIC_PASSWORD": self.password.reveal(), **self.extra_env}
        if self.access_key is not None and self.secret_key is not None:
            env["AWS_ACCESS_KEY_ID"] = self.access_key.reveal()
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_key.reveal()
        return env

    def run(
        self,
        args: Sequence[str],
        what: str,
        *,
        timeout: float = LONG,
        input_text: str | None = None,
    ) -> Completed:
        """Run restic; a non-zero exit code raises its typed error (restic.error_for), and
        one still running after ``timeout`` seconds is stopped and raises restic.TimedOut."""
        argv = [*self.repo.base(), *args]
        try:
            done = run(
                argv,
                what=what,
                timeout=timeout,
                input_text=input_text,
                env=self.env(),
                check=False,
            )
        except ProcessError as error:
            raise self._process_error(error, what, timeout) from None
        if not done.ok:
            raise _typed(done, what)
        return done

    def stream(
        self,
        args: Sequence[str],
        consumer: Sequence[str],
        what: str,
        *,
        on_bytes: Callable[[int], None] | None = None,
        timeout: float = LONG,
    ) -> int:
        """``restic ARGS | consumer`` (a dump streamed into a program on a host, so nothing is
        copied to this machine first); returns the bytes moved. A failing restic explains a
        failing consumer (its input was cut short), so restic's typed error comes first."""
        try:
            done = run_piped(
                [*self.repo.base(), *args],
                consumer,
                what=what,
                timeout=timeout,
                env=self.env(),
                on_bytes=on_bytes,
            )
        except ProcessError as error:
            raise self._process_error(error, what, timeout) from None
        if not done.producer.ok:
            raise _typed(done.producer, what)
        if not done.consumer.ok:
            raise failed(what, done.consumer)
        return done.transferred

    def _process_error(self, error: ProcessError, what: str, timeout: float) -> Exception:
        if error.failure == "not-found" and error.argv[:1] == (self.repo.binary,):
            return restic.ResticError(
                f"{what}: restic not found at {self.repo.binary} "
                "(run tools/components/restic.sh, or set drill.restic)"
            )
        if error.failure == "timed-out":
            return timed_out(what, timeout, error.output_tail, error.errors)
        return error

    def exists(self) -> bool:
        try:
            self.run(restic.cat_config_args(), "opening the repository", timeout=SHORT)
        except restic.RepositoryMissing:
            return False
        return True

    def snapshots(self, tags: Sequence[str]) -> list[restic.Snapshot]:
        done = self.run(restic.snapshots_args(tags), "listing snapshots", timeout=SHORT * 5)
        return restic.parse_snapshots(done.stdout)


@dataclass
class Hosts:
    """Reaching the inventory's hosts over SSH."""

    inventory: Inventory

    def vars(self, host: str) -> Mapping[str, Any]:
        return self.inventory.hosts[host]

    def ssh(self, host: str, command: str) -> tuple[str, ...]:
        return remote.ssh_argv(self.vars(host), host, command)

    def run(
        self,
        host: str,
        command: str,
        what: str,
        *,
        timeout: float = SHORT,
        check: bool = True,
        input_text: str | None = None,
    ) -> Completed:
        """``command`` on the host; ``input_text`` is its standard input (a secret goes there,
        never into the command line)."""
        return run(
            self.ssh(host, command),
            what=f"{what} on {host}",
            timeout=timeout,
            check=check,
            input_text=input_text,
        )


def _typed(done: Completed, what: str) -> restic.ResticError:
    """restic's exit code as its typed error, redacted."""
    failure = restic.error_for(done.returncode, done.stderr, what)
    return type(failure)(redact(str(failure)), failure.returncode)


def free_space(path: Path) -> int:
    """Free bytes where ``path`` is (this machine)."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize
