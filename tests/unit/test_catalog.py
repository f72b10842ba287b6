"""The control catalog: the real one is consistent with the checks and playbooks, and bad
catalog files are reported as ``file:line: key.path: message``, all problems at once."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import get_args

import pytest
import yaml

from cityguard.catalog import (
    VERIFIER_SCOPES,
    Baseline,
    Catalog,
    Scope,
    Verifier,
    expand_checks,
    load_baseline,
    load_catalog,
    load_frameworks,
    select,
)
from cityguard.config import ConfigError, content_root
from cityguard.verify.collect import collect_checks

ROOT = content_root()
POLICIES = ROOT / "policies"


# ---------------------------------------------------------------------------- the real catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(POLICIES)


@pytest.fixture(scope="module")
def collected() -> dict[str, tuple[str, ...]]:
    return collect_checks(ROOT / "checks")


def test_real_catalog_loads(catalog: Catalog) -> None:
    assert {"CG-SSH-001", "CG-FILE-001", "CG-NET-001", "CG-KRN-001"} <= set(catalog.controls)
    assert set(catalog.frameworks) == {
        "cis_debian12",
        "cis_controls_v8",
        "iso27001_2022",
        "nis2_art21",
        "nis2_ir_2024_2690",
        "lv_cr397",
    }
    assert catalog.controls["CG-SSH-003"].parameters == {"max_auth_tries": 4}


def test_collect_finds_the_real_checks(collected: dict[str, tuple[str, ...]]) -> None:
    assert collected["test_ssh::test_sshd_refuses_root_login"] == ("CG-SSH-001",)
    key = (
        "test_sysctl::test_network_setting_active[CG-NET-002:net.ipv4.conf.all.accept_source_route]"
    )
    assert collected[key] == ("CG-NET-002",)
    assert len(collected) >= 300


def test_every_control_check_exists(
    catalog: Catalog, collected: dict[str, tuple[str, ...]]
) -> None:
    """Each entry (an id or a * pattern) names at least one real check of that control."""
    missing = [
        f"{control.id}: {entry}"
        for control in catalog.controls.values()
        for entry in control.checks
        if not expand_checks([entry], [c for c, ids in collected.items() if control.id in ids])
    ]
    assert missing == []


def test_every_check_names_existing_controls(
    catalog: Catalog, collected: dict[str, tuple[str, ...]]
) -> None:
    unmarked = [check for check, controls in collected.items() if not controls]
    unknown = [
        f"{check}: {cid}"
        for check, controls in collected.items()
        for cid in controls
        if cid not in catalog.controls
    ]
    assert unmarked == []
    assert unknown == []


def test_catalog_and_markers_agree(catalog: Catalog, collected: dict[str, tuple[str, ...]]) -> None:
    """A control lists a check exactly when that check's marker names the control."""
    from_catalog = {
        (check, control.id)
        for control in catalog.controls.values()
        for check in expand_checks(control.checks, collected)
    }
    from_markers = {(check, cid) for check, controls in collected.items() for cid in controls}
    assert from_catalog == from_markers


def test_every_remediation_role_exists(catalog: Catalog) -> None:
    roles = ROOT / "playbooks" / "roles"
    bad = [
        f"{control.id}: {control.remediation.role}"
        for control in catalog.controls.values()
        if control.remediation.role != "manual" and not (roles / control.remediation.role).is_dir()
    ]
    assert bad == []


def test_every_cis_id_is_in_the_benchmark_list() -> None:
    """Read the control files directly, so this holds even if the loader stopped checking."""
    text = (POLICIES / "frameworks" / "cis_debian12_ids.txt").read_text()
    known = {line.strip() for line in text.splitlines() if line and not line.startswith("#")}
    assert "5.1.20" in known
    used = set()
    for path in sorted((POLICIES / "controls").glob("*.yml")):
        for control in yaml.safe_load(path.read_text())["controls"]:
            cis = control["mappings"]["cis_debian12"]
            if cis != "unmapped":
                used |= {(path.name, control["id"], str(i)) for i in cis}
    assert used, "the catalog maps controls to CIS Debian 12"
    assert sorted(entry for entry in used if entry[2] not in known) == []


def test_every_nis2_ir_id_is_a_requirement_of_the_regulation(catalog: Catalog) -> None:
    """Read the control files directly: every NIS2 IR 2024/2690 id a control uses is one of the
    Annex's requirement ids listed in frameworks.yml."""
    spec = yaml.safe_load((POLICIES / "frameworks" / "frameworks.yml").read_text())
    known = set(spec["nis2_ir_2024_2690"]["ids"])
    assert len(known) == 49
    assert {"3.2", "6.3", "6.6", "6.7", "7", "9", "11.6", "4.2"} <= known
    used = set()
    for path in sorted((POLICIES / "controls").glob("*.yml")):
        for control in yaml.safe_load(path.read_text())["controls"]:
            ids = control["mappings"]["nis2_ir_2024_2690"]
            if ids != "unmapped":
                used |= {(path.name, control["id"], str(i)) for i in ids}
    assert used, "the catalog maps controls to the NIS2 implementing regulation"
    assert sorted(entry for entry in used if entry[2] not in known) == []
    assert catalog.frameworks["nis2_ir_2024_2690"] == known


def test_real_baseline_loads(catalog: Catalog) -> None:
    baseline = load_baseline(POLICIES, "municipal-server", catalog)
    assert baseline.name == "municipal-server"
    assert set(baseline.controls) <= set(catalog.controls)
    assert baseline.scopes == ("host",)


def test_real_host_controls_are_checked_on_hosts(catalog: Catalog) -> None:
    """Every control of scope host and verifier host-checks names checks (the loader says so);
    the catalog's host controls are all of that kind today."""
    host = [c for c in catalog.controls.values() if c.scope == "host"]
    assert host and all(c.verifier == "host-checks" and c.checks for c in host)


# ---------------------------------------------------------------------------- bad catalogs


CONTROL = """\
  - id: {id}
    title: A test requirement
    rationale: Because.
    severity: low
    remediation: {{role: ssh, tags: [ssh]}}
    checks: [test_ssh::test_sshd_refuses_root_login]
    mappings:
      cis_debian12: [{cis}]
      cis_controls_v8: ["4.1"]
      iso27001_2022: unmapped
      nis2_art21: ["i"]
      nis2_ir_2024_2690: ["11.6"]
      lv_cr397: unmapped
"""


def control(cid: str = "CG-TST-001", cis: str = '"5.1.20"') -> str:
    return CONTROL.format(id=cid, cis=cis)


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policies directory with the real frameworks; paths in problems are relative to it."""
    shutil.copytree(POLICIES / "frameworks", tmp_path / "policies" / "frameworks")
    (tmp_path / "policies" / "controls").mkdir()
    (tmp_path / "policies" / "baselines").mkdir()
    monkeypatch.chdir(tmp_path)
    return Path("policies")


def write(policies: Path, name: str, text: str) -> str:
    path = policies / "controls" / name
    path.write_text(text)
    return str(path)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing needle."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def problems(policies: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(policies)
    return str(caught.value).splitlines()


def test_valid_tmp_catalog_loads(policies: Path) -> None:
    write(policies, "a.yml", "controls:\n" + control())
    catalog = load_catalog(policies)
    assert list(catalog.controls) == ["CG-TST-001"]
    assert catalog.frameworks == load_frameworks(POLICIES)


def test_unknown_cis_id(policies: Path) -> None:
    text = "controls:\n" + control(cis='"9.9.9"')
    file = write(policies, "a.yml", text)
    line = line_of(text, "cis_debian12:")
    assert line == 9
    assert problems(policies) == [
        f"{file}:{line}: controls[0].mappings.cis_debian12: cis_debian12 has no id '9.9.9'"
    ]


def test_unknown_id_in_an_inline_id_framework(policies: Path) -> None:
    text = "controls:\n" + control().replace('nis2_art21: ["i"]', 'nis2_art21: ["i", "z"]')
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'nis2_art21:')}: controls[0].mappings.nis2_art21: "
        "nis2_art21 has no id 'z'"
    ]


def test_unknown_nis2_ir_id(policies: Path) -> None:
    text = "controls:\n" + control().replace('["11.6"]', '["11.6", "11.8", "A.8.15"]')
    file = write(policies, "a.yml", text)
    where = f"{file}:{line_of(text, 'nis2_ir_2024_2690:')}: controls[0].mappings.nis2_ir_2024_2690"
    assert problems(policies) == [
        f"{where}: nis2_ir_2024_2690 has no id '11.8'",
        f"{where}: nis2_ir_2024_2690 has no id 'A.8.15'",
    ]


def test_mappings_are_checked_for_every_scope(policies: Path) -> None:
    """A drill control maps to frameworks exactly as a host control does."""
    fields = "    scope: system\n    verifier: drill\n"
    dr = scoped("CG-DR-001", fields).replace('["11.6"]', '["4.2"]')
    write(policies, "a.yml", "controls:\n" + dr)
    assert load_catalog(policies).controls["CG-DR-001"].mappings["nis2_ir_2024_2690"] == ["4.2"]
    text = "controls:\n" + dr.replace('["4.2"]', '["4.9"]').replace(
        "      lv_cr397: unmapped\n", ""
    )
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'mappings:')}: controls[0].mappings: "
        "no mapping for lv_cr397 (write 'unmapped' if none)",
        f"{file}:{line_of(text, 'nis2_ir_2024_2690:')}: controls[0].mappings.nis2_ir_2024_2690: "
        "nis2_ir_2024_2690 has no id '4.9'",
    ]


def test_missing_framework_mapping(policies: Path) -> None:
    text = "controls:\n" + control().replace("      lv_cr397: unmapped\n", "")
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'mappings:')}: controls[0].mappings: "
        "no mapping for lv_cr397 (write 'unmapped' if none)"
    ]


def test_unknown_framework(policies: Path) -> None:
    text = "controls:\n" + control() + "      nist_800_53: [AC-2]\n"
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'nist_800_53:')}: controls[0].mappings.nist_800_53: "
        "unknown framework (known: cis_controls_v8, cis_debian12, iso27001_2022, lv_cr397, "
        "nis2_art21, nis2_ir_2024_2690)"
    ]


def test_duplicate_control_id_in_one_file(policies: Path) -> None:
    text = "controls:\n" + control() + "\n" + control()
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'id: CG-TST-001', 2)}: controls[1].id: "
        "duplicate control id CG-TST-001"
    ]


def test_duplicate_control_id_across_files(policies: Path) -> None:
    write(policies, "a.yml", "controls:\n" + control("CG-TST-001") + control("CG-TST-002"))
    text = "controls:\n" + control("CG-TST-003") + control("CG-TST-002")
    file = write(policies, "b.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'id: CG-TST-002')}: controls[1].id: duplicate control id CG-TST-002"
    ]


@pytest.mark.parametrize("bad", ["SSH-001", "CG-SSH-1", "cg-ssh-001", "CG-S-001"])
def test_malformed_control_id(policies: Path, bad: str) -> None:
    text = "controls:\n" + control(bad)
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:2: controls[0].id: control id '{bad}' is not of the form CG-AREA-NNN"
    ]


def test_malformed_check_id(policies: Path) -> None:
    text = "controls:\n" + control().replace(
        "checks: [test_ssh::test_sshd_refuses_root_login]", "checks: [ssh.py::root_login]"
    )
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'checks:')}: controls[0].checks: "
        "check id 'ssh.py::root_login' is not of the form test_file::test_name"
    ]


def scoped(cid: str, fields: str, checks: str = "") -> str:
    """A control with scope/verifier lines instead of its checks line (or other checks)."""
    text = control(cid).replace("    checks: [test_ssh::test_sshd_refuses_root_login]\n", checks)
    return text.replace("    severity: low\n", "    severity: low\n" + fields)


def test_scope_and_verifier_default_to_a_host_checked_control(policies: Path) -> None:
    write(
        policies,
        "a.yml",
        "controls:\n" + control() + scoped("CG-DR-001", "    scope: system\n    verifier: drill\n"),
    )
    catalog = load_catalog(policies)
    host, dr = catalog.controls["CG-TST-001"], catalog.controls["CG-DR-001"]
    assert (host.scope, host.verifier, host.checked_on_hosts) == ("host", "host-checks", True)
    assert (dr.scope, dr.verifier, dr.checks, dr.checked_on_hosts) == ("system", "drill", [], False)


def test_every_verifier_fits_some_scope_and_manual_fits_all() -> None:
    assert set(VERIFIER_SCOPES) == set(get_args(Verifier))
    assert set(VERIFIER_SCOPES["manual"]) == set(get_args(Scope))
    assert VERIFIER_SCOPES["host-checks"] == ("host",)


@pytest.mark.parametrize(
    ("fields", "needle", "key", "message"),
    [
        (
            "    scope: planet\n",
            "scope:",
            "scope",
            "Input should be 'host', 'system', 'realm', 'segment' or 'site'",
        ),
        (
            "    scope: system\n    verifier: oracle\n",
            "verifier:",
            "verifier",
            "Input should be 'host-checks', 'drill', 'eidas-rules', 'ipv6-checks' or 'manual'",
        ),
        (
            "    scope: realm\n    verifier: drill\n",
            "verifier:",
            "verifier",
            "verifier drill cannot prove a control of scope realm "
            "(scope realm needs eidas-rules or manual)",
        ),
        (  # the verifier left to its default has no line: the control's is given
            "    scope: segment\n",
            "id:",
            "verifier",
            "scope segment needs verifier ipv6-checks or manual "
            "(host-checks, the default, proves host controls only)",
        ),
    ],
)
def test_bad_scope_or_verifier_is_one_located_line(
    policies: Path, fields: str, needle: str, key: str, message: str
) -> None:
    text = "controls:\n" + scoped("CG-DR-001", fields)
    file = write(policies, "a.yml", text)
    assert problems(policies) == [f"{file}:{line_of(text, needle)}: controls[0].{key}: {message}"]


def test_a_host_checks_control_names_checks(policies: Path) -> None:
    text = "controls:\n" + scoped("CG-TST-001", "    verifier: host-checks\n", "    checks: []\n")
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'checks:')}: controls[0].checks: "
        "a control verified by host-checks names at least one check"
    ]
    write(policies, "a.yml", "controls:\n" + scoped("CG-TST-001", ""))  # no checks key at all
    assert problems(policies) == [
        f"{file}:2: controls[0].checks: a control verified by host-checks names at least one check"
    ]


def test_a_control_of_another_verifier_names_no_checks(policies: Path) -> None:
    fields = "    scope: realm\n    verifier: eidas-rules\n"
    text = "controls:\n" + scoped("CG-EID-001", fields, "    checks: [test_ssh::test_x]\n")
    file = write(policies, "a.yml", text)
    assert problems(policies) == [
        f"{file}:{line_of(text, 'checks:')}: controls[0].checks: "
        "only host-checks controls name checks; verifier eidas-rules runs none of them"
    ]


def test_baseline_with_unknown_scope(policies: Path) -> None:
    write(policies, "a.yml", "controls:\n" + control())
    catalog = load_catalog(policies)
    (policies / "baselines" / "test.yml").write_text(
        "name: test\ntitle: T\nlevels: [1]\nscopes:\n  - host\n  - hosts\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_baseline(policies, "test", catalog)
    assert str(caught.value).splitlines() == [
        "policies/baselines/test.yml:6: scopes[1]: "
        "Input should be 'host', 'system', 'realm', 'segment' or 'site'"
    ]


def test_all_problems_of_all_files_at_once(policies: Path) -> None:
    a = "controls:\n" + control("CG-TST-001", cis='"9.9.9"')
    b = "controls:\n" + control("bad-id")
    file_a, file_b = write(policies, "a.yml", a), write(policies, "b.yml", b)
    assert problems(policies) == [
        f"{file_a}:9: controls[0].mappings.cis_debian12: cis_debian12 has no id '9.9.9'",
        f"{file_b}:2: controls[0].id: control id 'bad-id' is not of the form CG-AREA-NNN",
    ]


def test_baseline_with_unknown_control_id(policies: Path) -> None:
    write(policies, "a.yml", "controls:\n" + control())
    catalog = load_catalog(policies)
    text = textwrap.dedent(
        """\
        name: test
        title: Test baseline
        levels: [1]
        exclude:
          - CG-TST-001
          - CG-NOPE-001
        parameters:
          CG-GONE-002: {x: 1}
        """
    )
    (policies / "baselines" / "test.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_baseline(policies, "test", catalog)
    assert str(caught.value).splitlines() == [
        "policies/baselines/test.yml:6: exclude[1]: unknown control id CG-NOPE-001",
        "policies/baselines/test.yml:8: parameters.CG-GONE-002: unknown control id CG-GONE-002",
    ]


def test_baseline_selects_by_level_and_exclusion(policies: Path) -> None:
    text = "controls:\n" + control("CG-TST-001") + control("CG-TST-002") + control("CG-TST-003")
    text = text.replace("    severity: low\n", "    severity: low\n    level: 2\n", 1)
    write(policies, "a.yml", text)
    catalog = load_catalog(policies)
    assert catalog.controls["CG-TST-001"].level == 2
    for name, levels, exclude in (("one", "[1]", "[]"), ("both", "[1, 2]", "[CG-TST-003]")):
        (policies / "baselines" / f"{name}.yml").write_text(
            f"name: {name}\ntitle: T\nlevels: {levels}\nexclude: {exclude}\n"
        )
    assert load_baseline(policies, "one", catalog).controls == ["CG-TST-002", "CG-TST-003"]
    assert load_baseline(policies, "both", catalog).controls == ["CG-TST-001", "CG-TST-002"]


def test_check_patterns_expand_literally_except_star() -> None:
    ids = ["test_a::test_x[CG-A-001]", "test_a::test_x[CG-A-002]", "test_a::test_y"]
    assert expand_checks(["test_a::test_x[CG-A-00*]"], ids) == set(ids[:2])
    assert expand_checks(["test_a::test_*"], ids) == set(ids)
    assert expand_checks(["test_a::test_x[CG-A-00?]"], ids) == set()


def test_missing_baseline(policies: Path) -> None:
    write(policies, "a.yml", "controls:\n" + control())
    with pytest.raises(ConfigError) as caught:
        load_baseline(policies, "nope", load_catalog(policies))
    assert str(caught.value) == "policies/baselines/nope.yml: (document): file not found"


# ---------------------------------------------------------------------------- select()


def test_parameters_layer_default_baseline_site(catalog: Catalog) -> None:
    baseline = Baseline(
        name="test",
        title="Test",
        controls=["CG-SSH-001", "CG-SSH-003", "CG-NET-001"],
        parameters={"CG-SSH-003": {"max_auth_tries": 3, "note": "from baseline"}},
    )
    site = {"CG-SSH-003": {"max_auth_tries": 2}, "CG-SSH-001": {"extra": True}}
    selection = select(catalog, baseline, site)
    assert selection.baseline == "test"
    assert selection.control_ids == ["CG-SSH-001", "CG-SSH-003", "CG-NET-001"]
    assert selection.parameters["CG-SSH-003"] == {"max_auth_tries": 2, "note": "from baseline"}
    assert selection.parameters["CG-SSH-001"] == {"extra": True}
    assert selection.parameters["CG-NET-001"] == catalog.controls["CG-NET-001"].parameters

    without_site = select(catalog, baseline, {})
    assert without_site.parameters["CG-SSH-003"] == {"max_auth_tries": 3, "note": "from baseline"}
    only_default = select(catalog, Baseline(name="b", title="B", controls=["CG-SSH-003"]), {})
    assert only_default.parameters == {"CG-SSH-003": {"max_auth_tries": 4}}


def test_a_site_changing_one_nested_setting_keeps_the_others(catalog: Catalog) -> None:
    baseline = Baseline(name="b", title="B", controls=["CG-NET-001"])
    site = {"CG-NET-001": {"settings": {"net.ipv4.conf.all.accept_redirects": "1"}}}
    settings = select(catalog, baseline, site).parameters["CG-NET-001"]["settings"]
    defaults = catalog.controls["CG-NET-001"].parameters["settings"]
    assert settings == {**defaults, "net.ipv4.conf.all.accept_redirects": "1"}
    assert len(settings) == 4


def test_select_does_not_change_the_catalog(catalog: Catalog) -> None:
    baseline = Baseline(name="b", title="B", controls=["CG-SSH-003"])
    select(catalog, baseline, {"CG-SSH-003": {"max_auth_tries": 1}})
    assert catalog.controls["CG-SSH-003"].parameters == {"max_auth_tries": 4}


def test_only_narrows_in_baseline_order(catalog: Catalog) -> None:
    baseline = load_baseline(POLICIES, "municipal-server", catalog)
    selection = select(catalog, baseline, {}, only=["CG-SSH-001", "CG-NET-001"])
    assert selection.control_ids == ["CG-NET-001", "CG-SSH-001"]
    # parameters of the whole baseline travel along: roles build shared files from them
    assert set(selection.parameters) == set(baseline.controls)


def test_only_outside_the_baseline_is_a_usage_error(catalog: Catalog) -> None:
    baseline = Baseline(name="test", title="Test", controls=["CG-SSH-001"])
    with pytest.raises(ConfigError) as caught:
        select(catalog, baseline, {}, only=["CG-SSH-001", "CG-FILE-001", "CG-XYZ-999"])
    assert str(caught.value).splitlines() == [
        "--controls: not in baseline test: CG-FILE-001",
        "--controls: not in baseline test: CG-XYZ-999",
    ]
