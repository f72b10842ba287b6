"""What the recorder lists of a run directory: every regular file, typed the same everywhere."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cityguard.evidence.artifacts import Artifact, collect_artifacts, media_type

IDENT = "artifacts/20250314T092653Z-1a2b3c4d"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("inventory.yml", "application/yaml"),
        ("drill/plan.yaml", "application/yaml"),
        (f"{IDENT}/cityguard_task_tags.jsonl", "application/jsonl"),
        (f"{IDENT}/job_events/1-0e2b.json", "application/json"),
        (f"{IDENT}/stdout", "text/plain"),
        (f"{IDENT}/stderr", "text/plain"),
        (f"{IDENT}/rc", "text/plain"),
        (f"{IDENT}/status", "text/plain"),
        (f"{IDENT}/command", "application/json"),
        (f"{IDENT}/fact_cache/web1", "application/json"),
        ("env/extravars", "application/json"),
        ("env/cmdline", "text/plain"),
        ("stdout", "application/octet-stream"),  # only runner's stdout is known to be text
        ("report.txt", "text/plain"),
        ("dump.sql.gz", "application/gzip"),
        ("blob", "application/octet-stream"),
    ],
)
def test_media_types(path: str, expected: str) -> None:
    assert media_type(path) == expected


def test_collect_lists_regular_files_sorted_with_digests(tmp_path: Path) -> None:
    files = {"b/z.json": b"{}", "a.yml": b"x: 1\n", "b/a/big.bin": os.urandom(3 * 2**20 + 5)}
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    (tmp_path / "b" / "link").symlink_to(tmp_path / "a.yml")
    (tmp_path / "b" / "dirlink").symlink_to(tmp_path / "b" / "a")
    found = collect_artifacts(tmp_path)
    assert [a.path for a in found] == ["a.yml", "b/a/big.bin", "b/z.json"]
    for artifact in found:
        content = files[artifact.path]
        assert artifact.sha256 == hashlib.sha256(content).hexdigest()
        assert artifact.size == len(content)
    assert collect_artifacts(tmp_path / "missing") == []


def test_an_unreadable_file_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.txt").write_text("ok")
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    original = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", refuse)
    found = collect_artifacts(tmp_path)
    monkeypatch.undo()
    assert [a.path for a in found] == ["ok.txt"]
    assert "cannot read" in caplog.text and "locked.txt" in caplog.text


def test_artifact_paths_stay_inside_the_run_directory() -> None:
    for bad in ("/etc/passwd", "../x", "a/../../x", ""):
        with pytest.raises(ValueError, match="relative"):
            Artifact(bad, "0" * 64, 1, "text/plain")
    with pytest.raises(ValueError, match="SHA-256"):
        Artifact("a", "0" * 63, 1, "text/plain")
