"""The check plugin, run as the runner runs it: a pytest subprocess writing JSON lines.

The checks here use `expect` and `param` only, never `facts`, so no host is contacted: the
`--hosts=ansible://...` option the runner passes is parsed but never used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cityguard.core.records import CheckResult, Outcome
from cityguard.verify.collect import collect_checks
from cityguard.verify.runner import CheckRun, VerifyError, parse_results, pytest_argv

CHECKS = """\
import pytest


@pytest.mark.controls("CG-TST-001")
def test_passes(expect, param):
    expect.at_most(3, param("CG-TST-001", "max_tries"), "MaxAuthTries")
    expect.equal("no", "no", "PermitRootLogin")


@pytest.mark.controls("CG-TST-002")
def test_assertion_fails(expect):
    expect.equal("without-password", "no", "PermitRootLogin")


@pytest.mark.controls("CG-TST-002")
def test_all_keys_fail(expect):
    expect.each_equal({"a.x": "1", "a.y": "0", "a.z": None}, {"a.x": "0", "a.y": "0", "a.z": "0"})


@pytest.mark.controls("CG-TST-003")
def test_other_exception(expect):
    expect.equal("root:root", "root:root", "owner")
    raise OSError("permission denied reading /etc/shadow")


@pytest.mark.controls("CG-TST-003")
def test_missing_parameter(param):
    param("CG-TST-003", "nothing")


@pytest.mark.controls("CG-TST-004")
def test_not_applicable(expect):
    expect.not_applicable("why")


@pytest.mark.controls("CG-TST-004")
def test_plain_skip(expect):
    pytest.skip("no time today")


def test_no_marker(expect):
    expect.equal(1, 1, "one")


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


@pytest.mark.controls("CG-TST-005")
def test_fixture_error(broken, expect):
    expect.equal(1, 1)


@pytest.mark.controls("CG-TST-001", "CG-TST-006")
@pytest.mark.parametrize("key", ["k1", "k2"])
def test_two_controls(key, expect):
    expect.equal(key, key, key)


@pytest.mark.controls("CG-TST-007")
def test_deselected(expect):
    expect.equal(1, 1)
"""

SELECTED = ["CG-TST-001", "CG-TST-002", "CG-TST-003", "CG-TST-004", "CG-TST-005", "CG-TST-006"]


@pytest.fixture(scope="module")
def checks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checks")
    (path / "test_sample.py").write_text(CHECKS)
    return path


@pytest.fixture(scope="module")
def lines(checks_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    scratch = tmp_path_factory.mktemp("run")
    results_file, params_file = scratch / "results.jsonl", scratch / "params.json"
    params_file.write_text(json.dumps({"CG-TST-001": {"max_tries": 4}}))
    run = CheckRun(
        checks_dir=checks_dir,
        inventory=scratch / "inventory.yml",  # never read: no check asks for a host
        hosts=["h1"],
        controls=SELECTED,
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        pytest_argv(run, "h1", results_file, params_file),
        capture_output=True,
        text=True,
        env=env,
        cwd=scratch,
        check=False,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    return results_file.read_text().splitlines()


@pytest.fixture(scope="module")
def records(lines: list[str]) -> dict[str, dict[str, Any]]:
    parsed = [json.loads(line) for line in lines]
    by_id = {r["check_id"]: r for r in parsed}
    assert len(by_id) == len(parsed), "check ids must be unique"
    return by_id


def test_one_line_per_selected_check(records: dict[str, dict[str, Any]]) -> None:
    assert sorted(records) == [
        "test_sample::test_all_keys_fail",
        "test_sample::test_assertion_fails",
        "test_sample::test_fixture_error",
        "test_sample::test_missing_parameter",
        "test_sample::test_no_marker",
        "test_sample::test_not_applicable",
        "test_sample::test_other_exception",
        "test_sample::test_passes",
        "test_sample::test_plain_skip",
        "test_sample::test_two_controls[k1]",
        "test_sample::test_two_controls[k2]",
    ]
    for record in records.values():
        assert record["host"] == "h1"
        assert isinstance(record["duration_s"], float)
        assert record["duration_s"] >= 0
        assert "started" not in record


def test_pass_keeps_observed_and_expected(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_passes"]
    assert record["outcome"] == "pass"
    assert record["controls"] == ["CG-TST-001"]
    assert record["observed"] == "MaxAuthTries: 3; PermitRootLogin: no"
    assert record["expected"] == "MaxAuthTries: <= 4; PermitRootLogin: no"
    assert record["reason"] is None


def test_assertion_is_a_failure_with_its_reason(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_assertion_fails"]
    assert record["outcome"] == "fail"
    assert record["reason"] == "PermitRootLogin: observed without-password, expected no"
    assert record["observed"] == "PermitRootLogin: without-password"
    assert record["expected"] == "PermitRootLogin: no"


def test_each_equal_failure_lists_all_keys(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_all_keys_fail"]
    assert record["outcome"] == "fail"
    assert record["reason"] == "a.x: observed 1, expected 0; a.z: observed (absent), expected 0"
    assert record["observed"] == "a.x: 1; a.y: 0; a.z: (absent)"
    assert record["expected"] == "a.x: 0; a.y: 0; a.z: 0"


def test_other_exception_is_an_error(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_other_exception"]
    assert record["outcome"] == "error"
    assert record["reason"] == "OSError: permission denied reading /etc/shadow"
    assert record["observed"] == "owner: root:root"  # what was seen before it broke is kept


def test_missing_parameter_is_an_error(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_missing_parameter"]
    assert record["outcome"] == "error"
    assert record["reason"] == "KeyError: \"no parameter 'nothing' for control CG-TST-003\""
    assert record["observed"] is None


def test_not_applicable_with_reason(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_not_applicable"]
    assert record["outcome"] == "not-applicable"
    assert record["reason"] == "why"


def test_plain_skip_is_an_error(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_plain_skip"]
    assert record["outcome"] == "error"
    assert record["reason"] == "did not run: no time today"


def test_check_without_controls_is_an_error(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_no_marker"]
    assert record["outcome"] == "error"
    assert record["reason"] == "this check names no control"
    assert record["controls"] == []


def test_fixture_error_at_setup_is_an_error(records: dict[str, dict[str, Any]]) -> None:
    record = records["test_sample::test_fixture_error"]
    assert record["outcome"] == "error"
    assert record["reason"] == "RuntimeError: fixture broke"
    assert record["observed"] is None


def test_parametrized_check_with_two_controls(records: dict[str, dict[str, Any]]) -> None:
    for key in ("k1", "k2"):
        record = records[f"test_sample::test_two_controls[{key}]"]
        assert record["outcome"] == "pass"
        assert record["controls"] == ["CG-TST-001", "CG-TST-006"]
        assert record["observed"] == f"{key}: {key}"


def test_controls_option_deselects_other_checks(records: dict[str, dict[str, Any]]) -> None:
    assert "test_sample::test_deselected" not in records


def test_parse_results(lines: list[str]) -> None:
    results = {r.check_id: r for r in parse_results(lines)}
    assert len(results) == 11
    assert results["test_sample::test_passes"] == CheckResult(
        check_id="test_sample::test_passes",
        host="h1",
        controls=("CG-TST-001",),
        outcome=Outcome.PASS,
        observed="MaxAuthTries: 3; PermitRootLogin: no",
        expected="MaxAuthTries: <= 4; PermitRootLogin: no",
        reason=None,
        duration_s=results["test_sample::test_passes"].duration_s,
    )
    assert {cid: r.outcome for cid, r in results.items()} == {
        "test_sample::test_passes": Outcome.PASS,
        "test_sample::test_assertion_fails": Outcome.FAIL,
        "test_sample::test_all_keys_fail": Outcome.FAIL,
        "test_sample::test_other_exception": Outcome.ERROR,
        "test_sample::test_missing_parameter": Outcome.ERROR,
        "test_sample::test_not_applicable": Outcome.NOT_APPLICABLE,
        "test_sample::test_plain_skip": Outcome.ERROR,
        "test_sample::test_no_marker": Outcome.ERROR,
        "test_sample::test_fixture_error": Outcome.ERROR,
        "test_sample::test_two_controls[k1]": Outcome.PASS,
        "test_sample::test_two_controls[k2]": Outcome.PASS,
    }
    assert results["test_sample::test_not_applicable"].reason == "why"
    assert results["test_sample::test_two_controls[k2]"].controls == ("CG-TST-001", "CG-TST-006")


def test_collect_lists_every_check_before_deselection(checks_dir: Path) -> None:
    table = collect_checks(checks_dir)
    assert table == {
        "test_sample::test_all_keys_fail": ("CG-TST-002",),
        "test_sample::test_assertion_fails": ("CG-TST-002",),
        "test_sample::test_deselected": ("CG-TST-007",),
        "test_sample::test_fixture_error": ("CG-TST-005",),
        "test_sample::test_missing_parameter": ("CG-TST-003",),
        "test_sample::test_no_marker": (),
        "test_sample::test_not_applicable": ("CG-TST-004",),
        "test_sample::test_other_exception": ("CG-TST-003",),
        "test_sample::test_passes": ("CG-TST-001",),
        "test_sample::test_plain_skip": ("CG-TST-004",),
        "test_sample::test_two_controls[k1]": ("CG-TST-001", "CG-TST-006"),
        "test_sample::test_two_controls[k2]": ("CG-TST-001", "CG-TST-006"),
    }


def test_collect_option_ignores_deselection(checks_dir: Path, tmp_path: Path) -> None:
    """The file lists every check even when -k and --cityguard-controls narrow the run."""
    out = tmp_path / "collected.json"
    argv = [
        sys.executable, "-m", "pytest", str(checks_dir), "--collect-only", "-q",
        "-p", "cityguard.verify.plugin", "-p", "no:cacheprovider",
        f"--cityguard-collect={out}", "--cityguard-controls=CG-TST-007", "-k", "deselected",
    ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "test_sample.py::test_deselected" in completed.stdout
    assert "test_passes" not in completed.stdout
    assert len(json.loads(out.read_text())) == 12


def test_collect_of_an_empty_directory(tmp_path: Path) -> None:
    assert collect_checks(tmp_path) == {}


def test_collect_failure_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    (tmp_path / "test_broken.py").write_text("import cityguard_no_such_module\n")
    with pytest.raises(VerifyError) as raised:
        collect_checks(tmp_path)
    assert str(raised.value) == (
        f"collecting the checks in {tmp_path} failed (pytest rc=2): "
        "test_broken.py: ModuleNotFoundError: No module named 'cityguard_no_such_module'"
    )


def test_collect_of_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match="checks directory not found"):
        collect_checks(tmp_path / "nope")


def test_collect_of_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(textwrap.dedent("def test_x(:\n    pass\n"))
    with pytest.raises(VerifyError) as raised:
        collect_checks(tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert "(pytest rc=2): test_bad.py: SyntaxError: " in message


# ---------------------------------------------------------------------------- the sysctl checks

FAKE_FACTS = '''\
import pytest

from cityguard.verify.facts import HostFacts


@pytest.fixture(scope="session")
def facts():
    """Stands in for the plugin's fixture: a container host with some settings wrong."""
    return HostFacts(
        container="systemd-nspawn",
        sysctl_runtime={
            "net.ipv4.conf.all.accept_redirects": "1",
            "net.ipv4.conf.default.accept_redirects": "0",
            "net.ipv6.conf.all.accept_redirects": "0",
            "net.ipv4.conf.all.accept_source_route": "0",
            "net.ipv4.conf.default.accept_source_route": "0",
            "net.ipv6.conf.all.accept_source_route": "0",
            "net.ipv6.conf.default.accept_source_route": "0",
        },
        sysctl_persisted={
            "net.ipv4.conf.all.accept_redirects": ("0", "/etc/sysctl.d/60-cityguard.conf"),
            "net.ipv4.conf.default.accept_redirects": ("0", "/etc/sysctl.d/60-cityguard.conf"),
            "net.ipv6.conf.all.accept_redirects": ("0", "/etc/sysctl.d/60-cityguard.conf"),
            "net.ipv6.conf.default.accept_redirects": ("1", "/etc/sysctl.conf"),
            "kernel.randomize_va_space": ("2", "/etc/sysctl.d/60-cityguard.conf"),
        },
    )
'''


def test_sysctl_checks_record_every_key(tmp_path: Path) -> None:
    """The real checks/test_sysctl.py, on faked facts: every key is evidence, all misses listed."""
    from cityguard.catalog import load_baseline, load_catalog, select
    from cityguard.config import content_root

    root = content_root()
    checks = tmp_path / "checks"
    checks.mkdir()
    shutil.copy(root / "checks" / "test_sysctl.py", checks / "test_sysctl.py")
    (checks / "conftest.py").write_text(FAKE_FACTS)
    catalog = load_catalog(root / "policies")
    selection = select(catalog, load_baseline(root / "policies", "municipal-server", catalog), {})
    params_file, results_file = tmp_path / "params.json", tmp_path / "results.jsonl"
    params_file.write_text(json.dumps(selection.parameters))
    run = CheckRun(
        checks, tmp_path / "inventory.yml", ["h1"], ["CG-NET-001", "CG-NET-002", "CG-KRN-001"]
    )
    completed = subprocess.run(
        pytest_argv(run, "h1", results_file, params_file),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    results = {r.check_id: r for r in parse_results(results_file.read_text().splitlines())}
    active = "test_sysctl::test_network_setting_active[CG-NET-001:{}]"
    persisted = "test_sysctl::test_network_setting_persisted[CG-NET-001:{}]"
    redirects = "net.ipv4.conf.all.accept_redirects"
    wrong = results[active.format(redirects)]
    assert (wrong.outcome, wrong.observed, wrong.reason) == (
        Outcome.FAIL,
        f"{redirects}: 1",
        f"{redirects}: observed 1, expected 0",
    )
    assert results[active.format("net.ipv4.conf.default.accept_redirects")].outcome is Outcome.PASS
    in_file = results[persisted.format("net.ipv6.conf.default.accept_redirects")]
    assert (in_file.outcome, in_file.observed) == (
        Outcome.FAIL,
        "net.ipv6.conf.default.accept_redirects in /etc/sysctl.conf: 1",
    )
    absent = results[
        "test_sysctl::test_network_setting_persisted"
        "[CG-NET-002:net.ipv4.conf.all.accept_source_route]"
    ]
    assert absent.reason == (
        "net.ipv4.conf.all.accept_source_route in no file: observed (absent), expected 0"
    )
    kernel = results[
        "test_sysctl::test_kernel_setting_active[CG-KRN-001:kernel.randomize_va_space]"
    ]
    assert kernel.outcome is Outcome.NOT_APPLICABLE
    assert kernel.reason is not None
    assert kernel.reason.startswith("kernel.* sysctls are global: a systemd-nspawn container")
    kernel_file = results[
        "test_sysctl::test_kernel_setting_persisted[CG-KRN-001:kernel.randomize_va_space]"
    ]
    assert kernel_file.outcome is Outcome.PASS
    assert kernel_file.observed == (
        "kernel.randomize_va_space in /etc/sysctl.d/60-cityguard.conf: 2"
    )
