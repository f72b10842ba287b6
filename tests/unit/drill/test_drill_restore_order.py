"""The order in which the drill restores a backup set's databases: once PostgreSQL runs on the
target, the roles of every database first (they own the databases' objects), then the
databases; a set without a database waits for nothing."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from cityguard.drill.action import _Part, _restore_databases
from cityguard.drill.manifest import SourceRecord
from cityguard.drill.plan import FilesSource, PostgresSource
from cityguard.drill.progress import DrillProgress


class Recorded:
    """A repository and hosts that only record what the drill streams, and where to."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def stream(self, args: Any, consumer: Any, what: str, on_bytes: Any = None) -> int:
        self.events.append(what)
        return 10

    def ssh(self, target: str, command: str) -> list[str]:
        return ["ssh", target, command]


class Awaited(Future[Any]):
    """PostgreSQL's start, noting when the drill waits for it."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def result(self, timeout: float | None = None) -> Any:
        self.events.append("postgresql running")
        return super().result(timeout)


def database(index: int, name: str) -> _Part:
    source = PostgresSource(kind="postgresql", name=name, host="db1", database=name)
    record = SourceRecord(
        "postgresql",
        f"snap-{name}",
        f"/{name}.pgdump",
        "db1",
        globals_snapshot=f"globals-{name}",
        globals_path=f"/{name}.globals.sql",
    )
    return _Part(index, 3, source, record)


def tree(index: int) -> _Part:
    source = FilesSource(kind="files", name="uploads", host="web1", paths=["/srv/uploads"])
    return _Part(index, 3, source, SourceRecord("files", "snap-up", "/uploads.tar", "web1"))


def progress() -> DrillProgress:
    return DrillProgress(lambda _line: None, datetime.now(UTC), 3600)


def test_roles_of_every_database_come_before_any_database_and_after_postgresql_starts() -> None:
    events: list[str] = []
    started = Awaited(events)
    started.set_result(None)
    fake: Any = Recorded(events)
    parts = [database(1, "portal"), tree(2), database(3, "registry")]

    moved = _restore_databases(parts, fake, fake, "scratch1", "/srv/drill", progress(), started)

    assert moved == 40  # two roles streams and two databases, no file tree
    assert [e.split(" on ")[0] for e in events] == [
        "postgresql running",
        "restoring the roles of portal",
        "restoring the roles of registry",
        "restoring portal",
        "restoring registry",
    ]


def test_a_set_without_a_database_waits_for_nothing() -> None:
    never: Future[Any] = Future()  # PostgreSQL never started: waiting on it would hang
    fake: Any = Recorded([])

    assert _restore_databases([tree(1)], fake, fake, "scratch1", "/d", progress(), never) == 0
    assert fake.events == []
