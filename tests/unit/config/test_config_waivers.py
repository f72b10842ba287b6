"""Waivers in the site file: validated for shape, control ids and hosts, with exact lines."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from cityguard.config import ConfigError, content_root, load_site

EXAMPLE = content_root() / "examples" / "site"


def site_with(tmp_path: Path, waivers: str) -> Path:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    path = site / "site.yml"
    text = path.read_text()
    assert "\nwaivers: []\n" in text
    path.write_text(text.replace("\nwaivers: []\n", "\nwaivers:\n" + waivers))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_valid_waiver_loads(tmp_path: Path) -> None:
    path = site_with(
        tmp_path,
        """\
  - control: CG-SSH-003
    hosts: [db]
    justification: the backup agent retries keys one by one
    approver: IT security officer
    expires: 2027-03-31
""",
    )
    site = load_site(path)
    assert len(site.waivers) == 1
    assert site.waivers[0].expires == date(2027, 3, 31)
    assert site.waivers[0].hosts == ["db"]


def test_bad_waivers_are_all_reported_with_lines(tmp_path: Path) -> None:
    path = site_with(
        tmp_path,
        """\
  - control: CG-NOPE-001
    hosts: [db, nosuchhost]
    justification: the backup agent retries keys one by one
    approver: IT security officer
    expires: 2027-03-31
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    shown = str(path)
    assert str(caught.value).splitlines() == [
        f"{shown}:{line_of(path, 'CG-NOPE-001')}: waivers[0].control: "
        "unknown control id 'CG-NOPE-001'",
        f"{shown}:{line_of(path, 'nosuchhost')}: waivers[0].hosts[1]: "
        "no host or group named 'nosuchhost' in the inventory",
    ]


def test_a_waiver_needs_an_approver_and_a_real_date(tmp_path: Path) -> None:
    path = site_with(
        tmp_path,
        """\
  - control: CG-SSH-003
    hosts: [db]
    justification: the backup agent retries keys one by one
    expires: someday
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2, lines
    entry = next(
        i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith("  - control")
    )
    assert lines[0].startswith(f"{path}:{entry}: waivers[0].approver: ")
    assert "required key is missing" in lines[0]
    assert lines[1].startswith(f"{path}:{line_of(path, 'someday')}: waivers[0].expires: ")
