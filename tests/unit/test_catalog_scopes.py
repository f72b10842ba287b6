"""Scoped controls: a control of another scope (a DR plan's information system) is selected by a
baseline that covers its scope, yet never reaches the host check run or harden."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from cityguard.ansible import PlaybookRequest, PlaybookResult
from cityguard.catalog import Catalog, Selection, load_baseline, load_catalog, select
from cityguard.check import action as check_action
from cityguard.config import ConfigError, content_root
from cityguard.harden import action as harden_action
from cityguard.verify.runner import CheckRun, HostRun
from cityguard.workspace import Workspace, open_workspace

ROOT = content_root()
SITE = ROOT / "examples" / "site" / "site.yml"

HOST_CONTROL = """\
  - id: CG-TST-001
    title: A host requirement
    rationale: Because.
    severity: low
    parameters: {max_auth_tries: 4}
    schema: {max_auth_tries: {type: int, min: 1, max: 10}}
    remediation: {role: ssh, tags: [ssh]}
    checks: [test_ssh::test_sshd_limits_auth_tries]
"""

DR_CONTROL = """\
  - id: CG-DR-001
    title: Each information system's restore is tested against its recovery time objective
    rationale: Because.
    severity: high
    scope: system
    verifier: drill
    parameters: {rto_hours: 8}
    schema: {rto_hours: {type: int, min: 1}}
    remediation: {role: manual}
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """A catalog of one host control and one DR control, and baselines with and without DR."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies" / "frameworks", policies / "frameworks")
    (policies / "controls").mkdir()
    (policies / "baselines").mkdir()
    frameworks = load_catalog(ROOT / "policies").frameworks
    mappings = "    mappings:\n" + "".join(f"      {f}: unmapped\n" for f in sorted(frameworks))
    (policies / "controls" / "mixed.yml").write_text(
        "controls:\n" + HOST_CONTROL + mappings + DR_CONTROL + mappings
    )
    (policies / "baselines" / "hosts.yml").write_text("name: hosts\ntitle: H\nlevels: [1]\n")
    (policies / "baselines" / "with-dr.yml").write_text(
        "name: with-dr\ntitle: D\nlevels: [1]\nscopes: [host, system]\n"
    )
    (policies / "baselines" / "dr-only.yml").write_text(
        "name: dr-only\ntitle: D\nlevels: [1]\nscopes: [system]\n"
    )
    return policies


@pytest.fixture
def catalog(policies: Path) -> Catalog:
    return load_catalog(policies)


def test_a_baseline_selects_by_scope(policies: Path, catalog: Catalog) -> None:
    dr = catalog.controls["CG-DR-001"]
    assert (dr.scope, dr.verifier, dr.checks) == ("system", "drill", [])
    host = catalog.controls["CG-TST-001"]
    assert (host.scope, host.verifier) == ("host", "host-checks")  # the defaults
    assert load_baseline(policies, "hosts", catalog).controls == ["CG-TST-001"]
    assert load_baseline(policies, "with-dr", catalog).controls == ["CG-DR-001", "CG-TST-001"]
    assert load_baseline(policies, "dr-only", catalog).controls == ["CG-DR-001"]


def test_the_selection_per_scope_and_verifier(policies: Path, catalog: Catalog) -> None:
    selection = select(catalog, load_baseline(policies, "with-dr", catalog), {})
    assert [c.id for c in selection.of(scope="system")] == ["CG-DR-001"]
    assert [c.id for c in selection.of(verifier="drill")] == ["CG-DR-001"]
    assert [c.id for c in selection.of(scope="host", verifier="host-checks")] == ["CG-TST-001"]
    assert selection.of(scope="realm") == []
    assert [c.id for c in selection.host_controls] == ["CG-TST-001"]
    hosts = selection.for_hosts()
    assert hosts.control_ids == ["CG-TST-001"]
    assert hosts.parameters == {"CG-TST-001": {"max_auth_tries": 4}}


def test_dr_parameters_stay_off_hosts_also_when_not_chosen(
    policies: Path, catalog: Catalog
) -> None:
    """--controls narrows the run; the DR control's parameters still never reach a host."""
    baseline = load_baseline(policies, "with-dr", catalog)
    selection = select(catalog, baseline, {}, only=["CG-TST-001"])
    assert set(selection.parameters) == {"CG-DR-001", "CG-TST-001"}
    assert set(selection.for_hosts().parameters) == {"CG-TST-001"}


@pytest.mark.parametrize(("baseline", "only"), [("dr-only", None), ("with-dr", ["CG-DR-001"])])
def test_no_host_control_is_refused_never_widened(
    policies: Path, catalog: Catalog, baseline: str, only: list[str] | None
) -> None:
    selection = select(catalog, load_baseline(policies, baseline, catalog), {}, only)
    with pytest.raises(ConfigError) as caught:
        selection.for_hosts()
    assert str(caught.value) == (
        f"controls: nothing to run on hosts: baseline {baseline} selects no control of scope "
        "host verified by host-checks here"
    )


def workspace_with(selection: Selection, catalog: Catalog) -> Workspace:
    """The example site (its inventory and state), judged against the temp catalog."""
    return dataclasses.replace(open_workspace(SITE), catalog=catalog, selection=selection)


def test_a_dr_control_never_reaches_the_host_check_run_nor_harden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policies: Path, catalog: Catalog
) -> None:
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    selection = select(catalog, load_baseline(policies, "with-dr", catalog), {})
    assert selection.control_ids == ["CG-DR-001", "CG-TST-001"]
    workspace = workspace_with(selection, catalog)

    runs: list[CheckRun] = []

    def run_checks(run: CheckRun, on_host_done: object = None) -> list[HostRun]:
        runs.append(run)
        return [HostRun(host, []) for host in run.hosts]

    monkeypatch.setattr(check_action, "run_checks", run_checks)
    outcome = check_action.check(workspace, progress=False)
    (run,) = runs
    assert run.controls == ["CG-TST-001"]
    assert set(run.parameters) == {"CG-TST-001"}
    # every host control gets a result on every host (here: no check ran), the DR control none
    assert {c.control_id for c in outcome.controls} == {"CG-TST-001"}

    requests: list[PlaybookRequest] = []

    def run_playbook(request: PlaybookRequest, on_event: object = None) -> PlaybookResult:
        requests.append(request)
        return PlaybookResult(0, "successful", {}, [], tmp_path)

    monkeypatch.setattr(harden_action, "run_playbook", run_playbook)
    hardened = harden_action.harden(workspace, progress=False)
    (request,) = requests
    assert request.extra_vars["cityguard_selected_controls"] == ["CG-TST-001"]
    assert set(request.extra_vars["cityguard_params"]) == {"CG-TST-001"}
    assert hardened.controls == ["CG-TST-001"]
