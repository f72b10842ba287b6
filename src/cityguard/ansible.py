"""Run a playbook through ansible-runner and turn what happened into typed results.

Through ansible-runner, not a hand-built command line: it keeps every event and the raw stdout
under the run directory (evidence for auditors) and passes extra vars in a 0600 file, not argv
where any local user could read them. Conversions are pure functions, tested on recorded events.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import ansible_runner
from rich.console import Console

from cityguard.secrets import scrub_runner_command

TaskStatus = Literal["ok", "changed", "failed", "unreachable", "skipped"]
_EVENT_STATUSES: tuple[TaskStatus, ...] = ("ok", "failed", "unreachable", "skipped")
RESULT_EVENTS = {f"runner_on_{status}": status for status in _EVENT_STATUSES}  # per host, task
TAGS_FILE = "cityguard_task_tags.jsonl"  # in the artifacts dir, next to job_events/
# Runner writes these under run_dir/env/ only when absent, then reads them on every later run:
# a stale cmdline would silently put a real run in check mode, stale extravars would leak in.
_STALE_ENV_FILES = ("envvars", "extravars", "cmdline")
# Runner 2.4 events carry no task tags, so this callback, loaded for the run only, records each
# task's effective tags (its own plus those of its blocks, role and play) by task uuid.
_TAGS_CALLBACK = """\
import json, os
from ansible.plugins.callback import CallbackBase
class CallbackModule(CallbackBase):
    CALLBACK_VERSION, CALLBACK_TYPE, CALLBACK_NAME = 2.0, "aggregate", "cityguard_task_tags"
    CALLBACK_NEEDS_ENABLED = False
    def v2_playbook_on_task_start(self, task, is_conditional=False):
        with open(os.environ["CITYGUARD_TASK_TAGS_FILE"], "a", encoding="utf-8") as out:
            out.write(json.dumps([str(task._uuid), sorted({str(t) for t in task.tags})]) + "\\n")
    v2_playbook_on_handler_task_start = v2_playbook_on_task_start
"""


class AnsibleError(Exception):
    """ansible-runner could not start the playbook at all; a failed playbook is a result."""


@dataclass(frozen=True)
class PlaybookRequest:
    """Everything one run needs; run_dir is runner's private_data_dir and keeps the artifacts."""

    project_dir: Path
    playbook: str
    inventory: Path
    run_dir: Path
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    check: bool = False  # check mode always shows diffs: the point is to see what would change
    diff: bool = False
    extra_vars: dict[str, Any] = field(default_factory=dict)
    forks: int = 10
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostStats:
    """One host's recap, as Ansible counts it (ok includes changed)."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class TaskResult:
    """One task on one host; message is only a failure's msg, never the task's output."""

    host: str
    task: str
    role: str | None
    tags: list[str]
    action: str
    status: TaskStatus
    message: str | None = None
    diff: list[Any] | None = None  # only for changed tasks, and only when diff/check was on
    ignored: bool = False  # failed under ignore_errors, so not a host failure
    # the controls a multi-control task says it changed (cityguard's modules report them)
    changed_controls: list[str] | None = None


@dataclass(frozen=True)
class PlaybookResult:
    """What a run did; a non-zero rc is data here, not an exception."""

    rc: int
    status: str  # runner's: successful, failed, timeout or canceled
    hosts: dict[str, HostStats]
    tasks: list[TaskResult]
    artifacts_dir: Path

    @property
    def changed_total(self) -> int:
        return sum(stats.changed for stats in self.hosts.values())

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(host for host, stats in self.hosts.items() if stats.failed)

    @property
    def unreachable_hosts(self) -> list[str]:
        return sorted(host for host, stats in self.hosts.items() if stats.unreachable)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failed_hosts and not self.unreachable_hosts


def host_stats_from_runner(stats: Mapping[str, Any] | None) -> dict[str, HostStats]:
    """Per-host stats from runner.stats; a host missing from a counter has none of it."""
    counters = {k: v for k, v in (stats or {}).items() if isinstance(v, Mapping)}
    keys = ("ok", "changed", "failures", "dark", "skipped")  # HostStats' fields, in order
    hosts = sorted({host for counter in counters.values() for host in counter})
    return {h: HostStats(*(int(counters.get(k, {}).get(h, 0)) for k in keys)) for h in hosts}


def event_status(event: Mapping[str, Any]) -> TaskStatus | None:
    """The status a runner_on_* event reports; None for every other event."""
    status = RESULT_EVENTS.get(str(event.get("event")))
    res = (event.get("event_data") or {}).get("res") or {}
    return "changed" if status == "ok" and res.get("changed") else status


def _message(res: Mapping[str, Any]) -> str | None:
    """The failure's msg (and failed loop items' msgs): enough to act on, nothing more."""
    if "censored" in res:
        return "output hidden: the task is no_log"
    items = [i for i in res.get("results") or [] if isinstance(i, Mapping) and i.get("failed")]
    msgs = [res.get("msg"), *(item.get("msg") for item in items)]
    return "; ".join(dict.fromkeys(str(msg) for msg in msgs if msg)) or None


def _diffs(res: Mapping[str, Any]) -> list[Any] | None:
    """Every diff of a task as one list, a loop's items' included."""
    parts = [res, *(r for r in res.get("results") or [] if isinstance(r, Mapping))]
    diffs = [p["diff"] for p in parts if isinstance(p.get("diff"), Mapping | list)]
    return [d for diff in diffs for d in ([diff] if isinstance(diff, Mapping) else diff)] or None


def _changed_controls(res: Mapping[str, Any]) -> list[str] | None:
    """The controls a cityguard module reports it changed, a loop's items' included."""
    parts = [res, *(r for r in res.get("results") or [] if isinstance(r, Mapping))]
    reported = {str(c) for p in parts for c in p.get("cityguard_changed_controls") or []}
    return sorted(reported) or None  # none named: the task's tags say which controls


def task_result_from_event(
    event: Mapping[str, Any], tags_by_task: Mapping[str, list[str]]
) -> TaskResult | None:
    """A TaskResult for a per-host result event (runner_on_*); None for any other event."""
    status = event_status(event)
    data = event.get("event_data") or {}
    if status is None or not data.get("host"):
        return None
    res = data.get("res") or {}
    return TaskResult(
        host=str(data["host"]),
        task=str(data.get("task") or ""),
        role=data.get("role") or None,
        tags=list(tags_by_task.get(str(data.get("task_uuid")), [])),
        action=str(data.get("resolved_action") or data.get("task_action") or ""),
        status=status,
        message=_message(res) if status in ("failed", "unreachable") else None,
        diff=_diffs(res) if status == "changed" else None,
        ignored=status == "failed" and bool(data.get("ignore_errors")),
        changed_controls=_changed_controls(res) if status == "changed" else None,
    )


def task_results_from_events(
    events: Iterable[Mapping[str, Any]], tags_by_task: Mapping[str, list[str]]
) -> list[TaskResult]:
    """Every task result of a run, in event order."""
    return [r for e in events if (r := task_result_from_event(e, tags_by_task)) is not None]


def read_task_tags(path: Path) -> dict[str, list[str]]:
    """The task uuid -> tags map the tags callback wrote; empty if it wrote nothing."""
    tags: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            task_uuid, task_tags = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed run
        tags[str(task_uuid)] = [str(tag) for tag in task_tags]
    return tags


def _host_key_checking(cfg: Path) -> str:
    """The project's host_key_checking (default on), passed on as an environment variable.

    Runner sets ANSIBLE_HOST_KEY_CHECKING=False unless the environment has it, overriding
    ansible.cfg and accepting any SSH host key."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        parser.read(cfg, encoding="utf-8")
        return parser.get("defaults", "host_key_checking", fallback="True")
    except configparser.Error:
        return "True"


def _envvars(request: PlaybookRequest, plugins: Path, tags_file: Path) -> dict[str, str]:
    env = dict(request.env)
    # Runner starts ansible-playbook by name: without this venv's bin first it fails (rc 127).
    path = env.get("PATH", os.environ.get("PATH", os.defpath))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    cfg = request.project_dir / "ansible.cfg"
    if cfg.is_file():
        env.setdefault("ANSIBLE_CONFIG", str(cfg.resolve()))
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        env.setdefault("ANSIBLE_HOST_KEY_CHECKING", _host_key_checking(cfg))
    callbacks = env.get("ANSIBLE_CALLBACK_PLUGINS", os.environ.get("ANSIBLE_CALLBACK_PLUGINS"))
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join(filter(None, [str(plugins), callbacks]))
    env["CITYGUARD_TASK_TAGS_FILE"] = str(tags_file)
    return env


def _preflight(request: PlaybookRequest, env: Mapping[str, str]) -> None:
    """Refuse early, in one line, what runner would report late or confusingly.

    A missing playbook only shows as rc 1 with no events, and a missing inventory path is taken
    by Ansible for a host name that it then tries to reach over SSH.
    """
    where = f"cannot run {request.playbook}"
    if not request.project_dir.is_dir():
        raise AnsibleError(f"{where}: project directory {request.project_dir} does not exist")
    if not (request.project_dir / request.playbook).is_file():
        raise AnsibleError(f"{where}: playbook not found in {request.project_dir}")
    if not request.inventory.exists():
        raise AnsibleError(f"{where}: inventory {request.inventory} does not exist")
    if shutil.which("ansible-playbook", path=env["PATH"]) is None:
        raise AnsibleError(f"{where}: ansible-playbook not found on PATH {env['PATH']}")
    try:
        request.run_dir.mkdir(parents=True, exist_ok=True)
        for name in _STALE_ENV_FILES:
            (request.run_dir / "env" / name).unlink(missing_ok=True)
    except OSError as exc:
        raise AnsibleError(f"{where}: run directory {request.run_dir}: {exc.strerror}") from exc


def _runner_kwargs(request: PlaybookRequest, ident: str, env: dict[str, str]) -> dict[str, Any]:
    flags = [("--check", request.check), ("--diff", request.diff or request.check)]
    return {
        "private_data_dir": str(request.run_dir.resolve()),
        "project_dir": str(request.project_dir.resolve()),
        "playbook": request.playbook,
        "inventory": str(request.inventory.resolve()),  # a relative one runner would rewrite
        "ident": ident,
        "envvars": env,
        "extravars": dict(request.extra_vars) or None,  # to env/extravars (0600), not argv
        "limit": request.limit,
        "tags": ",".join(request.tags) or None,
        "skip_tags": ",".join(request.skip_tags) or None,
        "forks": request.forks,
        "cmdline": " ".join(flag for flag, on in flags if on) or None,
        "quiet": True,  # raw stdout still lands in artifacts/<ident>/stdout
    }


def run_playbook(
    request: PlaybookRequest, *, progress: bool = True, console: Console | None = None
) -> PlaybookResult:
    """Run the playbook, showing live progress, and return what it did to each host.

    Raises AnsibleError only when the run cannot start; one run_dir serves one run at a time.
    """
    # Imported here: ansible_progress uses this module's types, so a top import would cycle.
    from cityguard.ansible_progress import PlaybookProgress

    ident = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"  # sorts by time
    artifacts_dir = request.run_dir.resolve() / "artifacts" / ident
    with tempfile.TemporaryDirectory(prefix="cityguard-callbacks-") as plugins:
        env = _envvars(request, Path(plugins), artifacts_dir / TAGS_FILE)
        _preflight(request, env)
        Path(plugins, "cityguard_task_tags.py").write_text(_TAGS_CALLBACK, encoding="utf-8")
        with PlaybookProgress(request.playbook, console=console, enabled=progress) as view:
            try:
                runner = ansible_runner.run(
                    **_runner_kwargs(request, ident, env), event_handler=view.on_event
                )
            except (ansible_runner.AnsibleRunnerException, ValueError, OSError) as exc:
                reason = " ".join(str(exc).split())  # one line, no traceback for the user
                where = f"{request.playbook} in {request.run_dir}"
                raise AnsibleError(f"ansible-runner could not start {where}: {reason}") from exc
            finally:
                scrub_runner_command(artifacts_dir)
    return PlaybookResult(
        rc=runner.rc if isinstance(runner.rc, int) else -1,
        status=str(runner.status),
        hosts=host_stats_from_runner(runner.stats),
        tasks=task_results_from_events(runner.events, read_task_tags(artifacts_dir / TAGS_FILE)),
        artifacts_dir=artifacts_dir,
    )
