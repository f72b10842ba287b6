"""What a playbook run did, read from ansible-runner's events: pure functions and types.

Kept apart from running so results can be tested on recorded events, and so a display (the
caller's business) can read the same types without importing the runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TaskStatus = Literal["ok", "changed", "failed", "unreachable", "skipped"]
_EVENT_STATUSES: tuple[TaskStatus, ...] = ("ok", "failed", "unreachable", "skipped")
RESULT_EVENTS = {f"runner_on_{status}": status for status in _EVENT_STATUSES}  # per host, task
TASK_START_EVENTS = ("playbook_on_task_start", "playbook_on_handler_task_start")


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
    # what such a module changed, item by item ({control, what, diff}: a sysctl key, a file's
    # overriding lines), so each is recorded against its own control
    itemized: list[dict[str, Any]] | None = None


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


def _itemized(res: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The item-by-item changes a cityguard module reports, a loop's items' included."""
    parts = [res, *(r for r in res.get("results") or [] if isinstance(r, Mapping))]
    items = [
        dict(item)
        for p in parts
        for item in p.get("cityguard_changes") or []
        if isinstance(item, Mapping) and item.get("control")
    ]
    return items or None


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
        itemized=_itemized(res) if status == "changed" else None,
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
