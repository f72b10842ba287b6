"""The system area on lab hosts: file permissions, time sync, logging, auditd, updates, the
firewall, services and AppArmor are hardened, idempotent, proven, repaired after drift, and the
firewall never locks ops out.

Runs the strict baseline (level 1 and 2) limited to this area's controls, on a web server, a
database server and the router, so group-specific firewall rules and forwarding are covered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import changed_controls_per_host, changed_per_host, run_cli

from cityguard.config import content_root

pytestmark = pytest.mark.integration

AREA_FILES = (
    "files",
    "filesystem",
    "time",
    "logging",
    "auditd",
    "updates",
    "firewall",
    "services",
    "apparmor",
)
ROLES = "file_permissions,time_sync,logging,auditd,updates,firewall,services,apparmor"
HOSTS = ("web1", "db1", "router1")
LOG_HOST = "192.0.2.50"  # a documentation address: rsyslog queues, nothing is sent anywhere


def area_controls() -> list[str]:
    controls = content_root() / "policies" / "controls"
    return [
        c["id"]
        for name in AREA_FILES
        for c in yaml.safe_load((controls / f"{name}.yml").read_text())["controls"]
    ]


CONTROLS = ",".join(area_controls())


def harden(site: Path, *extra: str) -> tuple[int, str]:
    code, out, err = run_cli(
        "harden",
        "--site",
        str(site),
        "--tags",
        ROLES,
        "--controls",
        CONTROLS,
        "--limit",
        ",".join(HOSTS),
        "-q",
        *extra,
    )
    return code, out + err


def check(site: Path, *extra: str) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    code, out, err = run_cli(
        "check",
        "--site",
        str(site),
        "--controls",
        CONTROLS,
        "--limit",
        ",".join(HOSTS),
        "--format",
        "json",
        *extra,
    )
    assert out, err
    return code, {(c["host"], c["control"]): c for c in json.loads(out)["controls"]}


def checks_of(results: dict[tuple[str, str], dict[str, Any]], host: str) -> dict[str, Any]:
    return {ch["check_id"]: ch for (h, _), c in results.items() if h == host for ch in c["checks"]}


def site_variant(tmp_path: Path, lab, parameters: dict[str, Any]) -> Path:  # type: ignore[no-untyped-def]
    """The example site (same name, so the same lab) with the strict baseline, the given
    parameters, and web1's address for the database's `from_groups: [web]` rule."""
    target = tmp_path / "site"
    shutil.copytree(lab.site_file.parent, target)
    site = yaml.safe_load((target / "site.yml").read_text())
    site["baseline"] = "municipal-server-strict"
    site["parameters"] = parameters
    (target / "site.yml").write_text(yaml.safe_dump(site))
    inventory = yaml.safe_load((target / "inventory.yml").read_text())
    web1 = next(h for h in lab.lab.hosts if h.name == "web1")
    inventory["all"]["children"]["web"]["hosts"]["web1"] = {"firewall_addresses": [web1.ipv4]}
    (target / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return target / "site.yml"


@pytest.fixture(scope="module")
def site(lab_session, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return site_variant(
        tmp_path_factory.mktemp("system"), lab_session, {"CG-LOG-007": {"remote_target": LOG_HOST}}
    )


@pytest.fixture(scope="module")
def first_harden(lab_session, site) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
        return harden(site)


def test_first_harden_changes_every_host(first_harden, lab, site):  # type: ignore[no-untyped-def]
    """The second harden is the drift test's repair: it changes only the drifted host."""
    code, text = first_harden
    assert code == 0, text
    assert all(n > 0 for n in changed_per_host(lab.state_dir).values()), text


def test_every_control_passes_or_is_not_applicable_with_a_reason(first_harden, lab, site):  # type: ignore[no-untyped-def]
    code, results = check(site)
    assert code == 0, [c for c in results.values() if c["outcome"] != "pass"]
    assert len(results) == len(area_controls()) * len(HOSTS)
    for host in HOSTS:
        checks = checks_of(results, host)
        assert len(checks) >= 100, host
        for check_id, result in checks.items():
            assert result["outcome"] in ("pass", "not-applicable"), (host, check_id, result)
            if result["outcome"] == "not-applicable":
                assert "container" in result["reason"], (check_id, result["reason"])
            else:
                assert result["observed"], check_id
    web1, db1 = checks_of(results, "web1"), checks_of(results, "db1")
    assert web1["test_files::test_file_permissions[CG-FILE-001:/etc/shadow]"]["observed"] == (
        "/etc/shadow 0640 root:shadow"
    )
    assert (
        "rule 1: meta iifname lo accept"
        in web1["test_firewall::test_loopback_accepted"]["observed"]
    )
    assert (
        "https 443/tcp from anywhere (ipv6): accepted"
        in web1["test_firewall::test_approved_services_open"]["observed"]
    )
    postgres = db1["test_firewall::test_approved_services_open"]["observed"]
    assert "postgresql 5432/tcp from elsewhere (192.0.2.10): dropped" in postgres
    web1_ipv4 = next(h.ipv4 for h in lab.lab.hosts if h.name == "web1")
    assert f"postgresql 5432/tcp from {web1_ipv4}" in postgres  # resolved from its group
    router = checks_of(results, "router1")["test_firewall::test_forward_policy"]["observed"]
    assert "(router)" in router and "accepted" in router
    auditd_running = web1["test_auditd::test_auditd_running"]
    assert auditd_running["outcome"] == "not-applicable" and "EPERM" in auditd_running["reason"]
    assert web1["test_logging::test_logs_forwarded_to_log_host"]["observed"].endswith(
        f"tcp://{LOG_HOST}:514"
    )


def test_firewall_lets_the_web_group_reach_the_database_and_drops_others(first_harden, lab):  # type: ignore[no-untyped-def]
    db1 = next(h for h in lab.lab.hosts if h.name == "db1")
    # echo from web1's segment to db1's, through both hosts' firewalls and the router's
    lab.ssh("web1", f"ping -4 -c 1 -W 3 {db1.ipv4}")
    # PostgreSQL on db1 listens on loopback only: from web1 the firewall lets the SYN through
    # and the kernel refuses it at once; from anywhere else the SYN is dropped (a timeout)
    probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{db1.ipv4}/5432' 2>&1; echo rc=$?"
    assert "Connection refused" in lab.ssh("web1", probe)
    from_controller = subprocess.run(
        ["timeout", "4", "bash", "-c", f"exec 3<>/dev/tcp/{db1.ipv4}/5432"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert from_controller.returncode == 124, from_controller.stderr  # timed out: dropped


def test_drift_is_detected_and_repaired(first_harden, lab, site):  # type: ignore[no-untyped-def]
    lab.ssh(
        "web1",
        "chmod 0644 /etc/shadow && nft delete table inet cityguard && "
        "echo 'server 10.9.9.9 iburst' >> /etc/chrony/chrony.conf && "
        "mkdir -p /srv/share && chmod 0777 /srv/share",
    )
    code, results = check(site)
    assert code == 1
    web1 = checks_of(results, "web1")
    assert web1["test_files::test_file_permissions[CG-FILE-001:/etc/shadow]"]["observed"] == (
        "/etc/shadow 0644 root:shadow"
    )
    assert results[("web1", "CG-FW-002")]["outcome"] == "fail"
    assert "no input chain" in web1["test_firewall::test_input_policy_is_drop"]["observed"]
    assert "server 10.9.9.9" in web1["test_time::test_chrony_has_no_other_sources"]["observed"]
    assert (
        "/srv/share"
        in web1["test_filesystem::test_world_writable_directories_are_sticky"]["observed"]
    )
    assert {r["outcome"] for (h, _), r in results.items() if h == "db1"} <= {
        "pass",
        "not-applicable",
    }

    # the repair runs on every host of this module, a second harden for all but web1: it
    # changes only web1, for every control that failed there (a task that serves several
    # controls names them all)
    failed = {c for (h, c), r in results.items() if h == "web1" and r["outcome"] == "fail"}
    code, text = harden(site)
    assert code == 0, text
    assert set(changed_per_host(lab.state_dir)) == set(HOSTS)
    changed = changed_controls_per_host(lab.state_dir)
    assert set(changed) == {"web1"} and changed["web1"] >= failed, changed
    code, results = check(site)
    assert code == 0, [c for c in results.values() if c["outcome"] != "pass"]


def test_firewall_change_that_locks_out_is_rolled_back(first_harden, lab, tmp_path):  # type: ignore[no-untyped-def]
    """Admin networks that exclude the controller: the fresh SSH login fails, the previous
    table is put back, and the host is reported failed."""
    before = lab.ssh("db1", "nft list table inet cityguard; cat /etc/nftables.d/cityguard.nft")
    bad = site_variant(
        tmp_path,
        lab,
        {
            "CG-LOG-007": {"remote_target": LOG_HOST},
            "CG-FW-004": {"admin_networks": ["192.0.2.0/24"]},
        },
    )
    code, out, err = run_cli(
        "harden",
        "--site",
        str(bad),
        "--tags",
        "firewall",
        "--controls",
        CONTROLS,
        "--limit",
        "db1",
        "-q",
    )
    assert code == 3, out + err
    assert "firewall change rolled back on db1" in out, out
    assert lab.ssh("db1", "nft list table inet cityguard; cat /etc/nftables.d/cityguard.nft") == (
        before
    )
    assert lab.ssh("db1", "ls /etc/nftables.d") == "cityguard.nft\n"


def test_nftables_service_is_running_and_reloads_the_hardened_ruleset(first_harden, lab):  # type: ignore[no-untyped-def]
    """Scanners and ops use the service: it must be active, and a reload must bring back the
    same default-deny table."""
    assert lab.ssh("web1", "systemctl is-active nftables").strip() == "active"
    lab.ssh("web1", "nft delete table inet cityguard && systemctl reload nftables")
    assert "policy drop;" in lab.ssh("web1", "nft list chain inet cityguard input")


def test_the_replaced_time_daemon_is_purged_with_its_enable_links(first_harden, lab):  # type: ignore[no-untyped-def]
    state = lab.ssh("web1", "dpkg-query -W -f='${db:Status-Status}' systemd-timesyncd || true")
    assert state in ("", "not-installed"), state
    links = lab.ssh("web1", "find /etc/systemd/system -name 'systemd-timesyncd*' -print")
    assert links == "", links


def test_hardening_one_firewall_control_keeps_every_other_in_the_ruleset(first_harden, lab, site):  # type: ignore[no-untyped-def]
    """Narrowing a run narrows what is reported, never the shared table: --controls CG-FW-004
    alone must leave input and forward policy on drop."""
    code, out, err = run_cli(
        "harden", "--site", str(site), "--controls", "CG-FW-004", "--limit", "web1", "-q"
    )
    assert code == 0, out + err
    assert "policy drop;" in lab.ssh("web1", "nft list chain inet cityguard input")
    assert "policy drop;" in lab.ssh("web1", "nft list chain inet cityguard forward")
    assert "policy drop;" in lab.ssh("web1", "grep -A1 'chain input' /etc/nftables.d/cityguard.nft")
