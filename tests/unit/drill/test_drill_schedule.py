"""`cityguard drill schedule`: next runs from systemd-analyze, and units systemd accepts; the
off-site bucket job of S3 plans (`schedule.offsite`)."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from drill_plan_files import load, plan_file, s3_repository

from cityguard import cli
from cityguard.config import content_root
from cityguard.config.errors import ConfigError
from cityguard.drill import units
from cityguard.drill.plan import DEFAULT_OFFSITE_SCHEDULE
from cityguard.drill.runner import calendar_problem, next_elapses
from cityguard.drill.status import schedules

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


# --- the off-site bucket job of S3 plans -----------------------------------------------------


def test_an_s3_plan_gets_the_default_offsite_schedule(tmp_path: Path) -> None:
    plan = load(plan_file(tmp_path, lambda d: s3_repository(d, retention_days=1)))[0]
    assert plan.spec.schedule.offsite is None
    assert plan.offsite_schedule == DEFAULT_OFFSITE_SCHEDULE
    assert [kind for kind, _ in schedules(plan)] == ["backup", "drill", "offsite"]
    local = load(plan_file(tmp_path, name="document-registry"))[0]
    assert local.offsite_schedule is None
    assert [kind for kind, _ in schedules(local)] == ["backup", "drill"]


def test_the_default_runs_well_inside_the_shortest_retention() -> None:
    # each run pushes retention to now + retention_days (at least 1 day): runs must come closer
    assert calendar_problem(DEFAULT_OFFSITE_SCHEDULE) is None
    runs = [
        datetime.strptime(text.rsplit(" ", 1)[0], "%a %Y-%m-%d %H:%M:%S")
        for text in next_elapses(DEFAULT_OFFSITE_SCHEDULE, 6)
    ]
    gaps = [later - earlier for earlier, later in pairwise(runs)]
    assert len(gaps) == 5 and max(gaps) <= timedelta(hours=13)


def test_a_given_offsite_schedule_is_kept_and_checked(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        s3_repository(data, retention_days=1)
        data["schedule"]["offsite"] = "*-*-* 03:45:00"

    plan = load(plan_file(tmp_path, edit), calendar=calendar_problem)[0]
    assert plan.offsite_schedule == "*-*-* 03:45:00"

    def bad(data: dict[str, Any]) -> None:
        s3_repository(data, retention_days=1)
        data["schedule"]["offsite"] = "every other tuesday"

    path = plan_file(tmp_path, bad)
    with pytest.raises(ConfigError) as caught:
        load(path, calendar=calendar_problem)
    assert caught.value.lines() == [
        f"citizen-portal.yml:{line_of(path, 'offsite:')}: schedule.offsite: 'every other "
        "tuesday' is not a valid systemd calendar expression"
    ]


def test_an_offsite_schedule_without_s3_is_a_plan_error(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["schedule"]["offsite"] = "daily"
        data["sources"][0]["host"] = "db9"

    path = plan_file(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load(path, calendar=calendar_problem)
    assert caught.value.lines() == [  # every problem at once, each located
        f"citizen-portal.yml:{line_of(path, 'host: db9')}: sources[0].host: no host 'db9' in "
        "the inventory",
        f"citizen-portal.yml:{line_of(path, 'offsite:')}: schedule.offsite: only an S3 "
        "repository (repository.s3) has an off-site bucket job to schedule",
    ]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_offsite_service_runs_setup_and_holds_no_secret() -> None:
    text = units.service("offsite", "citizen-portal", "/usr/bin/cityguard", Path("/srv/site.yml"))
    assert (
        "ExecStart=/usr/bin/cityguard backup offsite citizen-portal --setup --site /srv/site.yml "
        "-q\n" in text
    )
    assert "Description=cityguard off-site bucket job of citizen-portal\n" in text
    assert f"EnvironmentFile=-{units.ENV_FILE}\n" in text
    # the S3 keys and the repository password come from the environment file, never the unit
    assert "\nEnvironment=" not in text and "LoadCredential" not in text
    backup = units.service("backup", "citizen-portal", "/usr/bin/cityguard", Path("/srv/site.yml"))
    assert "ExecStart=/usr/bin/cityguard backup run citizen-portal --site /srv/site.yml -q\n" in (
        backup
    )
    timer = units.timer("offsite", "citizen-portal", DEFAULT_OFFSITE_SCHEDULE)
    assert f"OnCalendar={DEFAULT_OFFSITE_SCHEDULE}\n" in timer and "Persistent=true" in timer


@pytest.fixture
def s3_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example site with citizen-portal in an S3 bucket, its backups pushed from db1."""
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    for name, value in (("CG_S3_ACCESS", "AKIA-ACCESS-1"), ("CG_S3_SECRET", "s3-secret-2")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CITYGUARD_RESTIC_PASSWORD", "restic-password-3")
    site = tmp_path / "site"
    shutil.copytree(SITE.parent, site)
    plan = site / "plans" / "citizen-portal.yml"
    data = yaml.safe_load(plan.read_text())
    s3_repository(data, retention_days=1)
    data["backup_runs_on"] = "source-host"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    return site / "site.yml"


def test_list_shows_the_offsite_job_of_s3_plans_only(s3_site: Path) -> None:
    code, out = run_cli("drill", "schedule", "--list", "--site", str(s3_site))
    assert code == 0, out
    lines = out.splitlines()
    offsite = [line for line in lines if " offsite " in line]
    assert len(offsite) == 1
    assert offsite[0].startswith(f"citizen-portal offsite ({DEFAULT_OFFSITE_SCHEDULE}): ")
    assert offsite[0].count(" 00:00:00 ") + offsite[0].count(" 12:00:00 ") == 3
    assert any(line.startswith("citizen-portal backup on db1 (") for line in lines)
    assert any(line.startswith("document-registry drill (") for line in lines)


def test_install_writes_offsite_units_for_s3_plans_only(s3_site: Path, tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    code, out = run_cli("drill", "schedule", "--unit-dir", str(unit_dir), "--site", str(s3_site))
    assert code == 0, out
    assert sorted(p.name for p in unit_dir.iterdir()) == [
        "cityguard-backup-document-registry.service",
        "cityguard-backup-document-registry.timer",
        "cityguard-drill-citizen-portal.service",
        "cityguard-drill-citizen-portal.timer",
        "cityguard-drill-document-registry.service",
        "cityguard-drill-document-registry.timer",
        # on the control node even though db1 pushes the backups: it holds the plan's S3 keys
        "cityguard-offsite-citizen-portal.service",
        "cityguard-offsite-citizen-portal.timer",
    ]
    assert "cityguard-backup-citizen-portal: runs on db1 (cityguard backup deploy)" in out
    assert f"cityguard-offsite-citizen-portal.timer: OnCalendar={DEFAULT_OFFSITE_SCHEDULE}" in out
    service = (unit_dir / "cityguard-offsite-citizen-portal.service").read_text()
    command = shlex.split(service.split("ExecStart=", 1)[1].splitlines()[0])
    assert command[1:] == [
        "backup", "offsite", "citizen-portal", "--setup", "--site", str(s3_site.resolve()), "-q"
    ]  # fmt: skip
    timer = (unit_dir / "cityguard-offsite-citizen-portal.timer").read_text()
    assert f"OnCalendar={DEFAULT_OFFSITE_SCHEDULE}\n" in timer
    for path in unit_dir.iterdir():
        text = path.read_text()
        assert not any(s in text for s in ("AKIA-ACCESS-1", "s3-secret-2", "restic-password-3"))
