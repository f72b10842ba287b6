"""Plan validation: every problem of every plan at once, located; cross-checks on the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
from drill_plan_files import SITE, load, plan_file

from cityguard.config.errors import ConfigError
from cityguard.drill.durations import format_duration, parse_duration


def test_example_plans_load() -> None:
    plans = load(SITE / "plans" / "citizen-portal.yml", SITE / "plans" / "document-registry.yml")
    assert [p.system for p in plans] == ["citizen-portal", "document-registry"]
    assert plans[0].repository_location == "/state/restic/repos/citizen-portal"
    assert plans[0].spec.targets.rpo_s == 86400 and plans[0].spec.targets.rto_s == 3600
    assert plans[0].password.describe() == "environment variable CITYGUARD_RESTIC_PASSWORD"


def test_shape_problems_are_all_reported_with_lines(tmp_path: Path) -> None:
    def edit(p):  # type: ignore[no-untyped-def]
        p["targets"]["rto"] = "quickly"
        p["sources"][0]["kind"] = "oracle"
        p["repository"]["password"] = "hunter2"
        del p["owner"]

    with pytest.raises(ConfigError) as caught:
        load(plan_file(tmp_path, edit))
    lines = caught.value.lines()
    assert any(
        line.startswith("citizen-portal.yml:")
        and "targets.rto: 'quickly' is not a duration" in line
        for line in lines
    )
    assert any("sources[0]" in line for line in lines)
    assert any("repository.password: unknown key" in line for line in lines)
    assert any("owner: required key is missing" in line for line in lines)
    assert not any("hunter2" in line for line in lines)


def test_restore_onto_a_source_host_is_refused_whatever_the_plan_says(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(plan_file(tmp_path, lambda p: p["restore"].update(target="db1")))
    assert any("restore.target: 'db1' is a source host" in line for line in caught.value.lines())


def test_a_source_host_of_another_plan_is_refused_too(tmp_path: Path) -> None:
    portal = plan_file(tmp_path, lambda p: p["restore"].update(target="web1"))
    registry = SITE / "plans" / "document-registry.yml"
    with pytest.raises(ConfigError) as caught:
        load(portal, registry)
    text = "\n".join(caught.value.lines())
    assert "'web1' is a source host (of document-registry)" in text
    assert "'web1' is not in the scratch group 'scratch'" in text


def test_cross_problems_all_at_once(tmp_path: Path) -> None:
    def edit(p):  # type: ignore[no-untyped-def]
        p["sources"][0]["host"] = "db9"
        p["verify"][0]["source"] = "uploads"
        p["verify"][1]["source"] = "nothing"

    with pytest.raises(ConfigError) as caught:
        load(
            plan_file(tmp_path, edit),
            calendar=lambda expr: "bad calendar" if "01:30" in expr else None,
        )
    text = "\n".join(caught.value.lines())
    assert "sources[0].host: no host 'db9' in the inventory" in text
    assert "verify[0].source: 'uploads' is not a postgresql source" in text
    assert "verify[1].source: no source named 'nothing'" in text
    assert "schedule.backup: bad calendar" in text


def test_two_plans_for_one_system(tmp_path: Path) -> None:
    first = plan_file(tmp_path)
    second = tmp_path / "again.yml"
    second.write_text(first.read_text())
    with pytest.raises(ConfigError) as caught:
        load(first, second)
    assert any(
        "again.yml" in line and "system: also the system of" in line
        for line in caught.value.lines()
    )


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    with pytest.raises(ValueError):
        parse_duration("0s")
    assert format_duration(3725) == "1h02m05s" and format_duration(12.34) == "12.3s"
