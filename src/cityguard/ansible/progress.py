"""The live view of a playbook run: tasks started and per-host counters, as events arrive.

Kept apart from the runner, which only passes events on: the caller owns the display. It
reads only task names, hosts and the status of each result, never a task's output, so nothing
a task returned (and possibly marked no_log) can reach the terminal through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from cityguard.ansible.events import (
    RESULT_EVENTS,
    TASK_START_EVENTS,
    HostStats,
    event_status,
    host_stats_from_runner,
)


def tally_event(stats: HostStats, event: Mapping[str, Any]) -> HostStats:
    """Add one result event to a host's live counters, counted the way Ansible's recap is."""
    status = event_status(event)
    ignored = status == "failed" and bool((event.get("event_data") or {}).get("ignore_errors"))
    return HostStats(
        ok=stats.ok + (status in ("ok", "changed") or ignored),
        changed=stats.changed + (status == "changed"),
        failed=stats.failed + (status == "failed" and not ignored),
        unreachable=stats.unreachable + (status == "unreachable"),
        skipped=stats.skipped + (status == "skipped"),
    )


def host_line(host: str, stats: HostStats) -> str:
    """One host's counters, in the order an operator scans them: progress, then trouble."""
    return (
        f"{host}: ok {stats.ok} changed {stats.changed} failed {stats.failed}"
        f" unreachable {stats.unreachable}"
    )


class _RunClock(TimeElapsedColumn):
    """Elapsed time on the run's line only: host lines start late, their clocks would mislead."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("clock") else Text("")


class PlaybookProgress:
    """A rich Progress with one line for the task count and one line per host.

    Used as a context manager around the run, with on_event as runner's event_handler; when
    disabled, rich draws nothing and the caller needs no second code path.
    """

    def __init__(self, title: str, *, console: Console | None = None, enabled: bool = True):
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            _RunClock(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self._title = title
        self._started = 0
        self._tasks_line: TaskID | None = None
        self._hosts: dict[str, TaskID] = {}
        self._live: dict[str, HostStats] = {}

    def __enter__(self) -> PlaybookProgress:
        self._progress.start()
        self._tasks_line = self._progress.add_task(
            f"{self._title}: starting", total=None, clock=True
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Completing every line stops spinners and elapsed clocks: the run is over.
        if self._tasks_line is not None:
            description = f"{self._title}: tasks started {self._started}"
            self._progress.update(self._tasks_line, description=description, total=1, completed=1)
        for line in self._hosts.values():
            self._progress.update(line, total=1, completed=1)
        self._progress.stop()

    def on_event(self, event: Mapping[str, Any]) -> bool:
        """runner's event_handler: update the view; True so runner keeps the event on disk."""
        name, data = event.get("event"), event.get("event_data") or {}
        if name in TASK_START_EVENTS:
            self.task_started(str(data.get("task") or data.get("name") or "?"))
        elif name in RESULT_EVENTS and data.get("host"):
            host = str(data["host"])
            self._live[host] = tally_event(self._live.get(host, HostStats()), event)
            self.host(host, self._live[host])
        elif name == "playbook_on_stats":  # Ansible's own recap replaces the live counts
            for host, stats in host_stats_from_runner(data).items():
                self.host(host, stats)
        return True

    def task_started(self, name: str) -> None:
        """Count a started task and show its name as the current one."""
        self._started += 1
        if self._tasks_line is not None:
            description = f"{self._title}: tasks started {self._started} — {name}"
            self._progress.update(self._tasks_line, description=description)

    def host(self, host: str, stats: HostStats) -> None:
        """Show a host's counters, adding its line the first time the host is seen."""
        line = self._hosts.get(host)
        if line is None:
            self._hosts[host] = self._progress.add_task(host_line(host, stats), total=None)
        else:
            self._progress.update(line, description=host_line(host, stats))
