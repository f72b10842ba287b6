"""harden → check on real lab hosts: changes, evidence, drift, lockout safety.

That a second harden of the whole baseline changes nothing is proven once, on every host, by
test_ipv6_rollout.py (harden and the IPv6 rollout in either order), not here again."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import run_cli
from selections import hardening_controls

from cityguard.evidence import SqliteStore
from cityguard.workspace import open_workspace

pytestmark = pytest.mark.integration


def check_json(site: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """`check` of the hardening controls (the IPv6 ones pass only after an IPv6 rollout)."""
    narrowed = () if "--controls" in extra else ("--controls", ",".join(hardening_controls(site)))
    code, out, err = run_cli("check", "--site", str(site), "--format", "json", *narrowed, *extra)
    assert out, err
    return code, json.loads(out)


def outcomes(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["host"], c["control"]): c for c in report["controls"]}


def site_copy(tmp_path: Path, lab, edit) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the example site (same name, so same lab), changed by `edit(site, inventory)`."""
    target = tmp_path / "site"
    shutil.copytree(lab.site_file.parent, target)
    site = yaml.safe_load((target / "site.yml").read_text())
    inventory = yaml.safe_load((target / "inventory.yml").read_text())
    edit(site, inventory)
    (target / "site.yml").write_text(yaml.safe_dump(site))
    (target / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return target / "site.yml"


@pytest.fixture(scope="module")
def first_harden(lab_session) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
        code, out, err = run_cli("harden", "--site", str(lab_session.site_file), "-q")
    return code, out + err


def test_first_harden_changes_every_host(first_harden, lab):  # type: ignore[no-untyped-def]
    code, text = first_harden
    assert code == 0, text
    with SqliteStore(lab.state_dir / "evidence.sqlite") as store:
        run = store.latest_run("harden")
    assert run is not None and run.exit_code == 0
    for host in lab.lab.hosts:
        assert run.summary["hosts"][host.name]["changed"] > 0, run.summary


def test_check_passes_with_observed_values_in_evidence(first_harden, lab):  # type: ignore[no-untyped-def]
    code, report = check_json(lab.site_file)
    assert code == 0, report
    results = outcomes(report)
    selected = hardening_controls(lab.site_file)
    assert len(results) == len(selected) * len(lab.lab.hosts)
    for result in results.values():
        assert result["outcome"] in ("pass", "not-applicable"), result
        if result["outcome"] == "not-applicable":
            assert result["reason"], result
    web_root = results[("web1", "CG-SSH-001")]["checks"][0]
    assert web_root["observed"] == "PermitRootLogin: no"
    aslr = {c["check_id"]: c for c in results[("db1", "CG-KRN-001")]["checks"]}
    runtime = aslr["test_sysctl::test_kernel_setting_active[CG-KRN-001:kernel.randomize_va_space]"]
    assert runtime["outcome"] == "not-applicable" and "global" in runtime["reason"]
    with SqliteStore(lab.state_dir / "evidence.sqlite") as store:
        stored = store.control_results(report["run"])
    assert {(c.host, c.control_id): c.outcome.value for c in stored} == {
        key: result["outcome"] for key, result in results.items()
    }


def test_drift_fails_the_check_and_harden_repairs_it(first_harden, lab):  # type: ignore[no-untyped-def]
    lab.ssh(
        "web1",
        "sed -i 's/^PermitRootLogin no/PermitRootLogin yes/' "
        "/etc/ssh/sshd_config.d/00-cityguard.conf && "
        "sysctl -qw net.ipv4.conf.all.accept_redirects=1",
    )
    code, report = check_json(lab.site_file, "--limit", "web1,db1")
    results = outcomes(report)
    assert code == 1
    assert results[("web1", "CG-SSH-001")]["outcome"] == "fail"
    assert results[("web1", "CG-SSH-001")]["checks"][0]["observed"] == "PermitRootLogin: yes"
    assert results[("web1", "CG-NET-001")]["outcome"] == "fail"
    assert results[("db1", "CG-SSH-001")]["outcome"] == "pass"

    # the drifted host and a clean one: only the drifted one would change
    code, out, err = run_cli(
        "harden", "--check", "--site", str(lab.site_file), "--limit", "web1,db1", "-q"
    )
    assert code == 0, out + err
    would_change = [line for line in out.splitlines() if ": would change: " in line]
    assert would_change and all(line.startswith("web1 ") for line in would_change), out
    assert "PermitRootLogin no" in out  # the diff shows the value that would be restored
    code, _ = check_json(lab.site_file, "--limit", "web1")
    assert code == 1, "--check must not repair anything"

    code, out, err = run_cli("harden", "--site", str(lab.site_file), "--limit", "web1", "-q")
    assert code == 0, out + err
    code, report = check_json(lab.site_file, "--limit", "web1")
    assert code == 0, [c for c in report["controls"] if c["outcome"] != "pass"]


def test_sshd_change_that_locks_out_is_rolled_back(first_harden, lab, tmp_path):  # type: ignore[no-untyped-def]
    def cipher_no_client_offers(site: dict[str, Any], _inventory: dict[str, Any]) -> None:
        # valid for sshd -t and for the parameter schema, but OpenSSH clients offer no CBC
        # cipher by default: every fresh login fails, so only the login proof can catch it
        site["parameters"] = {"CG-SSH-008": {"ciphers": ["aes128-cbc"]}}

    before = lab.ssh("db1", "cat /etc/ssh/sshd_config.d/00-cityguard.conf")
    bad_site = site_copy(tmp_path, lab, cipher_no_client_offers)
    code, out, err = run_cli("harden", "--site", str(bad_site), "--limit", "db1", "-q")
    assert code == 3, out + err
    assert "rolled back" in out, out
    assert lab.ssh("db1", "cat /etc/ssh/sshd_config.d/00-cityguard.conf") == before
    assert "aes128-cbc" not in lab.ssh("db1", "sshd -T | grep ^ciphers")


def test_unreachable_host_is_an_error_and_others_complete(first_harden, lab, tmp_path):  # type: ignore[no-untyped-def]
    def add_ghost(_site: dict[str, Any], inventory: dict[str, Any]) -> None:
        inventory["all"]["children"]["web"]["hosts"]["ghost1"] = {
            "ansible_host": "ghost1.invalid",
            "ansible_ssh_common_args": "-o ConnectTimeout=2",
        }

    code, report = check_json(site_copy(tmp_path, lab, add_ghost), "--limit", "web")
    results = outcomes(report)
    assert code == 3
    assert {r["outcome"] for (h, _), r in results.items() if h == "ghost1"} == {"error"}
    assert {r["outcome"] for (h, _), r in results.items() if h == "web1"} == {"pass"}
    assert {r["reason"] for (h, _), r in results.items() if h == "ghost1"} == {"host unreachable"}
    (ghost,) = report["host_problems"]
    assert ghost["host"] == "ghost1" and ghost["unreachable"]
    assert ghost["problem"].startswith("unreachable: ssh: Could not resolve hostname ghost1.")


@contextlib.contextmanager
def stopped(lab, name: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every process of the lab host stopped (cgroup freezer), as a hung server looks to SSH:
    the kernel still takes the connection, nothing answers. Thawed afterwards, always."""
    (machine,) = [h.machine for h in lab.lab.hosts if h.name == name]
    freeze = Path("/sys/fs/cgroup/unified") / machine / "cgroup.freeze"
    # a shared connection kept from an earlier run would hang on the stopped host: close it
    subprocess.run(
        ["ssh", "-F", str(lab.lab.ssh_config), "-O", "exit", name],
        capture_output=True,
        check=False,
    )
    freeze.write_text("1")
    try:
        yield
    finally:
        freeze.write_text("0")


def test_a_stopped_host_is_one_line_and_the_others_complete(first_harden, lab):  # type: ignore[no-untyped-def]
    with stopped(lab, "db1"):
        code, out, err = run_cli("check", "--site", str(lab.site_file), "--limit", "web,db")
    said = [line for line in (out + err).splitlines() if line.startswith("db1: ")]
    assert len(said) == 1, out + err
    assert said[0].startswith("db1: unreachable: ") and len(said[0]) < 250, said
    assert "CommandResult" not in out + err and "host unreachable" not in out + err
    counts, _, rest = out.partition("Controls that did not pass")
    assert "│ db1 " in counts, out  # its error results are counted
    rows = [line for line in rest.splitlines() if line.startswith("│ db1 ")]
    assert not rows, out  # and not listed control by control

    run_id = out.strip().splitlines()[-1].removeprefix("evidence run ")
    with SqliteStore(lab.state_dir / "evidence.sqlite") as store:
        run = store.get_run(run_id)
        stored = store.control_results(run_id)
    selected = open_workspace(lab.site_file).selection.control_ids
    on_db1 = [c for c in stored if c.host == "db1"]
    assert len(on_db1) == len(selected)
    assert {(c.outcome.value, c.reason) for c in on_db1} == {("error", "host unreachable")}
    on_web1 = [c for c in stored if c.host == "web1"]
    assert len(on_web1) == len(selected)  # web1 was checked in full
    assert "error" not in {c.outcome.value for c in on_web1}
    web1_failed = any(c.outcome.value == "fail" for c in on_web1)
    assert code == (1 if web1_failed else 3), out + err  # a failed control outranks partial
    assert run.exit_code == code
    assert run.summary["host_problems"] == {"db1": said[0].removeprefix("db1: ")}
    assert lab.ssh("db1", "echo back") == "back\n"  # thawed: the host answers again


def test_waivers_keep_harden_off_and_expired_ones_fail(first_harden, lab, tmp_path):  # type: ignore[no-untyped-def]
    def waive(site: dict[str, Any], _inventory: dict[str, Any]) -> None:
        site["waivers"] = [
            {
                "control": "CG-SSH-004",
                "hosts": ["db"],
                "approver": "CISO",
                "justification": "the vendor's monitoring agent reads sshd_config",
                "expires": "2099-12-31",
            },
            {
                "control": "CG-SSH-003",
                "hosts": ["web1"],
                "approver": "CISO",
                "justification": "an exception for a migration that is over",
                "expires": "2020-01-01",
            },
        ]

    lab.ssh("db1", "chmod 0644 /etc/ssh/sshd_config")
    waived_site = site_copy(tmp_path, lab, waive)
    # both waived controls are the ssh role's: the other roles have nothing to show here
    code, out, err = run_cli(
        "harden", "--site", str(waived_site), "--limit", "db1,web1", "--tags", "ssh", "-q"
    )
    assert code == 0, out + err
    assert lab.ssh("db1", "stat -c %a /etc/ssh/sshd_config").strip() == "644"

    code, report = check_json(waived_site, "--limit", "db1,web1")
    results = outcomes(report)
    assert code == 1
    waived = results[("db1", "CG-SSH-004")]
    assert waived["outcome"] == "waived"
    assert "by CISO" in waived["reason"]
    assert "mode: 0644" in waived["checks"][0]["observed"]  # the check still ran
    expired = results[("web1", "CG-SSH-003")]
    assert expired["outcome"] == "fail"
    assert expired["reason"].startswith("waiver expired on 2020-01-01")

    code, out, err = run_cli(
        "harden", "--site", str(lab.site_file), "--limit", "db1", "--tags", "ssh", "-q"
    )
    assert code == 0, out + err
    assert lab.ssh("db1", "stat -c %a /etc/ssh/sshd_config").strip() == "600"
