"""Alerting after a backup or drill: Prometheus textfile metrics and a webhook's JSON body.

Pure rendering here; ``publish`` writes the textfile atomically and POSTs the webhook with the
standard library. A webhook that cannot be reached never changes the command's exit code: it
is reported as a warning line.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityguard.core.secrets import redact

PREFIX = "cityguard_dr"


@dataclass(frozen=True)
class Event:
    system: str
    kind: str  # backup | drill
    ok: bool
    finished_at: float  # unix time
    rto_s: float | None = None
    rpo_s: float | None = None
    run_id: str | None = None
    last_success: float | None = None  # filled in by merge: this run's time, or the last good one


def _labels(event: Event) -> str:
    return f'system="{event.system}",kind="{event.kind}"'


def textfile(events: list[Event]) -> str:
    """Prometheus text format: last success time, last result, and the drill's RTO and RPO."""
    lines = [
        f"# HELP {PREFIX}_last_success_timestamp_seconds Last successful run (unix time).",
        f"# TYPE {PREFIX}_last_success_timestamp_seconds gauge",
    ]
    lines += [
        f"{PREFIX}_last_success_timestamp_seconds{{{_labels(e)}}} {e.last_success:.0f}"
        for e in events
        if e.last_success is not None
    ]
    lines += [
        f"# HELP {PREFIX}_last_result Result of the last run: 1 ok, 0 failed.",
        f"# TYPE {PREFIX}_last_result gauge",
    ]
    lines += [f"{PREFIX}_last_result{{{_labels(e)}}} {int(e.ok)}" for e in events]
    for name, attr in (("rto_seconds", "rto_s"), ("rpo_seconds", "rpo_s")):
        values = [(e, getattr(e, attr)) for e in events if getattr(e, attr) is not None]
        if values:
            lines += [f"# TYPE {PREFIX}_{name} gauge"]
            lines += [f'{PREFIX}_{name}{{system="{e.system}"}} {v:.3f}' for e, v in values]
    return "\n".join(lines) + "\n"


def merge(existing: str, event: Event) -> list[Event]:
    """The events kept in the textfile (one per system and kind), with ``event`` replacing its
    predecessor; the file's own JSON comment keeps them between runs."""
    kept: dict[tuple[str, str], Event] = {}
    for line in existing.splitlines():
        if line.startswith("# cityguard-state "):
            for item in json.loads(line.removeprefix("# cityguard-state ")):
                found = Event(**item)
                kept[(found.system, found.kind)] = found
    previous = kept.get((event.system, event.kind))
    last = event.finished_at if event.ok else (previous.last_success if previous else None)
    event = Event(**{**event.__dict__, "last_success": last})
    kept[(event.system, event.kind)] = event
    return [kept[k] for k in sorted(kept)]


def webhook_body(event: Event, findings: list[str]) -> dict[str, Any]:
    return {**event.__dict__, "result": "pass" if event.ok else "fail", "findings": findings}


def publish(
    event: Event, findings: list[str], *, textfile_path: str | None, webhook_url: str | None
) -> list[str]:
    """Write the textfile and POST the webhook; returns warnings (never raises for them)."""
    warnings: list[str] = []
    if textfile_path:
        path = Path(textfile_path)
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        events = merge(existing, event)
        state = json.dumps([e.__dict__ for e in events], sort_keys=True)
        text = f"# cityguard-state {state}\n" + textfile(events)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cityguard-", suffix=".prom.tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    if webhook_url:
        body = json.dumps(webhook_body(event, findings)).encode()
        request = urllib.request.Request(
            webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except OSError as error:
            warnings.append(redact(f"webhook not delivered: {error}"))
    return warnings
