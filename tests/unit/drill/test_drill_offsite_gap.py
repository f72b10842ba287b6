"""The off-site job of an S3 plan pushes the retention of current objects to now +
``retention_days`` on each run, so the plan loader refuses a ``schedule.offsite`` (or the default
one) whose runs come ``retention_days`` or more apart, or come to an end."""

from __future__ import annotations

import contextlib
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from drill_plan_files import SITE, load, plan_file, s3_repository

from cityguard import cli
from cityguard.config.errors import ConfigError
from cityguard.drill.plan import DEFAULT_OFFSITE_SCHEDULE
from cityguard.drill.runner import (
    GAP_ITERATIONS,
    calendar_problem,
    elapse_times,
    gap_of,
    longest_gap,
)

# `systemd-analyze calendar --iterations=5 'Mon 03:00'` (systemd 252, local zone UTC)
WEEKLY = """\
  Original form: Mon 03:00
Normalized form: Mon *-*-* 03:00:00
    Next elapse: Mon 2026-12-07 03:00:00 UTC
       From now: 3 days left
       Iter. #2: Mon 2026-12-14 03:00:00 UTC
       From now: 1 week 3 days left
       Iter. #3: Mon 2026-12-21 03:00:00 UTC
       From now: 2 weeks 3 days left
       Iter. #4: Mon 2026-12-28 03:00:00 UTC
       From now: 3 weeks 3 days left
       Iter. #5: Mon 2027-01-04 03:00:00 UTC
       From now: 1 month 1 day left
"""

# TZ=Europe/Berlin systemd-analyze calendar --iterations=3
#   --base-time='2027-03-27 00:00:00 UTC' '*-*-* 03:00:00'  (over the change to summer time)
DAILY_BERLIN = """\
Normalized form: *-*-* 03:00:00
    Next elapse: Sat 2027-03-27 03:00:00 CET
       (in UTC): Sat 2027-03-27 02:00:00 UTC
       From now: 3 months 22 days left
       Iter. #2: Sun 2027-03-28 03:00:00 CEST
       (in UTC): Sun 2027-03-28 01:00:00 UTC
       From now: 3 months 23 days left
       Iter. #3: Mon 2027-03-29 03:00:00 CEST
       (in UTC): Mon 2027-03-29 01:00:00 UTC
       From now: 3 months 24 days left
"""

# `systemd-analyze calendar --iterations=5 2020-01-01` (a date in the past)
NEVER = """\
  Original form: 2020-01-01
Normalized form: 2020-01-01 00:00:00
    Next elapse: never
"""


# --- parsing systemd-analyze (pure) -----------------------------------------------------------


def test_the_runs_are_read_from_every_elapse_line() -> None:
    runs = elapse_times(WEEKLY)
    assert runs[0] == datetime(2026, 12, 7, 3, tzinfo=UTC)
    assert runs[-1] == datetime(2027, 1, 4, 3, tzinfo=UTC)
    assert len(runs) == 5
    assert gap_of(runs, 5) == timedelta(days=7)


def test_the_utc_line_wins_over_the_local_time() -> None:
    runs = elapse_times(DAILY_BERLIN)
    assert runs == [
        datetime(2027, 3, 27, 2, tzinfo=UTC),
        datetime(2027, 3, 28, 1, tzinfo=UTC),
        datetime(2027, 3, 29, 1, tzinfo=UTC),
    ]
    assert gap_of(runs, 3) == timedelta(days=1)  # the 23-hour day is not the longest


def test_a_schedule_that_ends_has_no_gap() -> None:
    assert elapse_times(NEVER) == []
    assert gap_of([], 5) is None
    one = elapse_times(WEEKLY)[:1]
    assert gap_of(one, 1) is None  # a single run keeps nothing alive
    assert gap_of(elapse_times(WEEKLY), 6) is None  # fewer runs listed than asked: it ends


# --- the plan loader (pure fakes) ----------------------------------------------------------------


def offsite_plan(tmp_path: Path, offsite: str | None, retention_days: int) -> Path:
    def edit(data: dict[str, Any]) -> None:
        s3_repository(data, retention_days=retention_days)
        if offsite is not None:
            data["schedule"]["offsite"] = offsite

    return plan_file(tmp_path, edit)


class FakeGap:
    """A pure ``calendar_gap``: the gap of each expression, and the expressions asked."""

    def __init__(self, gaps: dict[str, timedelta | None]) -> None:
        self.gaps = gaps
        self.asked: list[str] = []

    def __call__(self, expression: str) -> timedelta | None:
        self.asked.append(expression)
        return self.gaps[expression]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def problems(path: Path, gap: FakeGap) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path, calendar=lambda _: None, gap=gap)
    return caught.value.lines()


def test_a_daily_offsite_inside_the_retention_passes(tmp_path: Path) -> None:
    gap = FakeGap({"daily": timedelta(days=1)})
    plan = load(offsite_plan(tmp_path, "daily", 7), calendar=lambda _: None, gap=gap)[0]
    assert plan.offsite_schedule == "daily" and gap.asked == ["daily"]


def test_a_weekly_offsite_longer_than_the_retention_is_refused(tmp_path: Path) -> None:
    path = offsite_plan(tmp_path, "Mon 03:00", 3)
    assert problems(path, FakeGap({"Mon 03:00": timedelta(days=7)})) == [
        f"citizen-portal.yml:{line_of(path, 'offsite:')}: schedule.offsite: runs up to 7 days "
        "apart, longer than repository.s3.retention_days (3): current objects would lose their "
        "lock between runs"
    ]


def test_runs_exactly_retention_days_apart_are_refused(tmp_path: Path) -> None:
    path = offsite_plan(tmp_path, "daily", 1)
    assert problems(path, FakeGap({"daily": timedelta(days=1)})) == [
        f"citizen-portal.yml:{line_of(path, 'offsite:')}: schedule.offsite: runs up to 1 day "
        "apart, as long as repository.s3.retention_days (1): current objects would lose their "
        "lock between runs"
    ]


def test_an_offsite_schedule_that_ends_is_refused(tmp_path: Path) -> None:
    path = offsite_plan(tmp_path, "2099-01-01", 30)
    assert problems(path, FakeGap({"2099-01-01": None})) == [
        f"citizen-portal.yml:{line_of(path, 'offsite:')}: schedule.offsite: does not run "
        "forever (systemd-analyze lists a last run, or none): current objects would lose their "
        "lock once it stops"
    ]


def test_the_default_is_measured_and_located_at_the_retention(tmp_path: Path) -> None:
    gap = FakeGap({DEFAULT_OFFSITE_SCHEDULE: timedelta(hours=12)})
    assert load(offsite_plan(tmp_path, None, 1), calendar=lambda _: None, gap=gap)
    assert gap.asked == [DEFAULT_OFFSITE_SCHEDULE]
    # the default runs twice a day, so only a pretend gap refuses it
    path = offsite_plan(tmp_path, None, 1)
    slow = FakeGap({DEFAULT_OFFSITE_SCHEDULE: timedelta(days=1, hours=12, minutes=5)})
    assert problems(path, slow) == [
        f"citizen-portal.yml:{line_of(path, 'retention_days:')}: repository.s3.retention_days: "
        f"the default schedule.offsite ({DEFAULT_OFFSITE_SCHEDULE}) runs up to 1 day 12 hours 5 "
        "minutes apart, longer than repository.s3.retention_days (1): current objects would "
        "lose their lock between runs; give one whose runs come closer"
    ]


def test_no_gap_is_measured_for_an_invalid_schedule_or_without_s3(tmp_path: Path) -> None:
    gap = FakeGap({})
    path = offsite_plan(tmp_path, "every other tuesday", 7)
    with pytest.raises(ConfigError) as caught:
        load(path, calendar=lambda e: "bad" if e == "every other tuesday" else None, gap=gap)
    assert [p.message for p in caught.value.problems] == ["bad"]
    assert load(plan_file(tmp_path, name="document-registry"), gap=gap)
    assert gap.asked == []


# --- through the real systemd-analyze ------------------------------------------------------------


def about(gap: timedelta | None, expected: timedelta) -> bool:
    """``gap`` is ``expected``, give or take the hour a local zone's change of time moves it."""
    return gap is not None and abs(gap - expected) <= timedelta(hours=1)


def test_systemd_analyze_measures_the_gaps() -> None:
    assert about(longest_gap("Mon 03:00"), timedelta(days=7))
    assert about(longest_gap(DEFAULT_OFFSITE_SCHEDULE), timedelta(hours=12))
    assert GAP_ITERATIONS >= 400  # years of monthly runs: some month has 31 days
    assert about(longest_gap("*-*-01 03:00"), timedelta(days=31))
    assert about(longest_gap("Mon..Fri 03:00"), timedelta(days=3))  # over the weekend
    assert longest_gap("2020-01-01") is None  # never again
    assert longest_gap("2099-01-01") is None  # once


def test_a_weekly_offsite_is_refused_with_the_real_checks(tmp_path: Path) -> None:
    path = offsite_plan(tmp_path, "Mon 03:00", 3)
    with pytest.raises(ConfigError) as caught:
        load(path, calendar=calendar_problem, gap=longest_gap)
    (line,) = caught.value.lines()
    assert line.startswith(f"citizen-portal.yml:{line_of(path, 'offsite:')}: schedule.offsite: ")
    assert "longer than repository.s3.retention_days (3)" in line
    daily = offsite_plan(tmp_path, "*-*-* 03:45:00", 7)
    plan = load(daily, calendar=calendar_problem, gap=longest_gap)[0]
    assert plan.offsite_schedule == "*-*-* 03:45:00"


def test_drill_schedule_exits_2_on_a_weekly_offsite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    site = tmp_path / "site"
    shutil.copytree(SITE, site)
    plan = site / "plans" / "citizen-portal.yml"
    data = yaml.safe_load(plan.read_text())
    s3_repository(data, retention_days=3)
    data["schedule"]["offsite"] = "Mon 03:00"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(["drill", "schedule", "--list", "--site", str(site / "site.yml")])
    assert code == 2, out.getvalue()
    assert f"citizen-portal.yml:{line_of(plan, 'offsite:')}: schedule.offsite: runs up to " in (
        out.getvalue()
    )
