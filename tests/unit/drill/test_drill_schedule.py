"""`cityguard drill schedule`: next runs from systemd-analyze, and units systemd accepts."""

from __future__ import annotations

import contextlib
import io
import subprocess
from pathlib import Path

import pytest

from cityguard import cli
from cityguard.config import content_root

SITE = content_root() / "examples" / "site" / "site.yml"


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(list(args))
    return code, out.getvalue()


def test_list_shows_three_next_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path))
    code, out = run_cli("drill", "schedule", "--list", "--site", str(SITE))
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.startswith("citizen-portal drill"))
    assert line.count(" 04:00:00 UTC") == 3 and line.count("Sun ") == 4


def test_units_are_written_and_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path))
    units = tmp_path / "units"
    code, out = run_cli("drill", "schedule", "--unit-dir", str(units), "--site", str(SITE))
    assert code == 0, out
    timer = units / "cityguard-backup-document-registry.timer"
    assert "OnCalendar=*-*-* 00/12:15:00" in timer.read_text()
    service = (units / "cityguard-drill-citizen-portal.service").read_text()
    assert "drill run citizen-portal --site" in service and "PASSWORD" not in service
    done = subprocess.run(
        ["systemd-analyze", "calendar", "*-*-* 00/12:15:00"], capture_output=True, check=False
    )
    assert done.returncode == 0
