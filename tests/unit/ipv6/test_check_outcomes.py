"""The IPv6 controls are never not-applicable for want of a plan: what `cityguard check` gives
the checks (the site's sections' host variables, merged by the workspace) and how the real
checks/test_ipv6.py judge a site without a plan and a host the plan leaves out.

The checks fail before they read any fact, so no host is contacted: the inventory's hosts have
no address at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cityguard.cli.main import build_parser, main
from cityguard.config import content_root
from cityguard.config.errors import ConfigError
from cityguard.core.records import Outcome
from cityguard.verify.runner import CheckRun, run_checks
from cityguard.workspace import Workspace, open_workspace

EXAMPLE = content_root() / "examples" / "site"
IPV6_CONTROLS = [f"CG-IPV6-{n:03d}" for n in range(1, 13)]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    build_parser()  # registers the areas' sections, as the command line does
    target = tmp_path / "site"
    shutil.copytree(EXAMPLE, target)
    return target / "site.yml"


def edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def outcomes(workspace: Workspace, host: str, tmp_path: Path) -> dict[str, tuple[str, str]]:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    run = CheckRun(
        checks_dir=content_root() / "checks",
        inventory=workspace.write_inventory(run_dir),
        hosts=[host],
        controls=IPV6_CONTROLS,
    )
    (host_run,) = run_checks(run)
    assert host_run.problem is None, host_run.problem
    return {
        r.controls[0]: (r.outcome.value, r.reason or "")
        for r in host_run.results
        if r.controls[0] in IPV6_CONTROLS
    }


def test_every_host_gets_its_planned_state_from_the_ipv6_section(site: Path) -> None:
    workspace = open_workspace(site)
    web1 = workspace.inventory.hosts["web1"]["cityguard_ipv6"]
    assert web1["legs"][0]["address"] == "fd6b:3c41:9e20:101::659a:7fb2"
    assert web1["gateway"] == "fd6b:3c41:9e20:101::1"
    router = workspace.inventory.hosts["router1"]["cityguard_ipv6"]
    assert router["role"] == "router" and router["forwarding"] == 1


def test_no_ipv6_section_fails_every_ipv6_control_saying_why(site: Path, tmp_path: Path) -> None:
    edit(site, lambda data: data.pop("ipv6"))
    workspace = open_workspace(site)
    assert all("cityguard_ipv6" not in v for v in workspace.inventory.hosts.values())
    found = outcomes(workspace, "web1", tmp_path)
    assert sorted(found) == IPV6_CONTROLS
    assert set(found.values()) == {
        (Outcome.FAIL.value, "the site has no IPv6 addressing plan (ipv6.plan)")
    }


def test_a_host_the_plan_leaves_out_fails_naming_the_plan(site: Path, tmp_path: Path) -> None:
    edit(site.parent / "ipv6-plan.yml", lambda data: data["hosts"].pop("scratch1"))
    workspace = open_workspace(site)
    found = outcomes(workspace, "scratch1", tmp_path)
    assert sorted(found) == IPV6_CONTROLS
    (why,) = {reason for outcome, reason in found.values() if outcome == "fail"}
    assert why == f"host 'scratch1' is not in the IPv6 plan {site.parent / 'ipv6-plan.yml'}"
    assert {outcome for outcome, _ in found.values()} == {"fail"}


def test_a_broken_plan_stops_check_with_located_lines_and_exit_2(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = site.parent / "ipv6-plan.yml"
    plan.write_text(plan.read_text().replace("db1: {segment: data", "db1: {segment: nowhere"))
    with pytest.raises(ConfigError) as raised:
        open_workspace(site)
    (line,) = raised.value.lines()
    assert line.startswith(f"{plan}:") and "hosts.db1.segment" in line and "nowhere" in line
    assert main(["check", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert line in err
    assert not (site.parent.parent / "state" / "runs").exists()  # nothing ran


def test_sections_without_host_variables_add_none(site: Path) -> None:
    edit(site, lambda data: data.pop("ipv6"))
    plain = open_workspace(site)
    assert plain.inventory.hosts == plain.site.inventory.hosts
