"""What a backup records for later verification, stored as a small JSON file in its own
snapshot (tagged with the set): per source its snapshot and restic path, row counts of the
plan's tables, the newest row time, and a random sample of file hashes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = 1


@dataclass(frozen=True)
class SourceRecord:
    kind: str  # postgresql | files
    snapshot: str
    path: str  # the file's path inside the snapshot
    host: str
    bytes: int = 0
    row_counts: dict[str, int] = field(default_factory=dict)
    newest_row: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    globals_snapshot: str | None = None
    globals_path: str | None = None


@dataclass(frozen=True)
class Manifest:
    system: str
    set_id: str
    created_at: str
    sources: dict[str, SourceRecord]
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"manifest format {data.get('format')!r} is not {FORMAT}")
        sources = {name: SourceRecord(**value) for name, value in data["sources"].items()}
        return cls(
            system=str(data["system"]),
            set_id=str(data["set_id"]),
            created_at=str(data["created_at"]),
            sources=sources,
        )


def manifest_path(system: str) -> str:
    return f"/cityguard/{system}/manifest.json"


def dump_path(system: str, source: str) -> str:
    return f"/cityguard/{system}/{source}.pgdump"


def globals_path(system: str, source: str) -> str:
    return f"/cityguard/{system}/{source}.globals.sql"


def tar_path(system: str, source: str) -> str:
    return f"/cityguard/{system}/{source}.tar"


def count_differences(expected: dict[str, int], observed: dict[str, int]) -> list[str]:
    """One line per table whose restored count differs from the count at backup time."""
    lines = []
    for table, count in sorted(expected.items()):
        got = observed.get(table)
        if got != count:
            lines.append(f"{table}: {got if got is not None else 'missing'} rows, expected {count}")
    return lines


def hash_differences(expected: dict[str, str], observed: dict[str, str]) -> list[str]:
    lines = []
    for path, digest in sorted(expected.items()):
        got = observed.get(path)
        if got is None:
            lines.append(f"{path}: missing after restore")
        elif got != digest:
            lines.append(f"{path}: SHA-256 differs from backup time")
    return lines
