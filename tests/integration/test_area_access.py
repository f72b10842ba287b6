"""Access area on real lab hosts: SSH, accounts/PAM, sudo and banners hardened, proven, drift
repaired, and changes that would lock ops out rolled back without needing SSH or sudo.

Runs the strict baseline, so the level-2 controls (CG-SSH-015, CG-SUDO-004) are proven too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_run import changed_controls_per_host, changed_per_host, run_cli

from cityguard.catalog import load_catalog
from cityguard.config import content_root

pytestmark = pytest.mark.integration

ROLES = "ssh,accounts,sudo,banners"
PREFIXES = ("CG-SSH-", "CG-ACC-", "CG-SUDO-", "CG-BAN-")
ACCESS_CONTROLS = sorted(
    cid for cid in load_catalog(content_root() / "policies").controls if cid.startswith(PREFIXES)
)
BROKEN_PROFILE = """\
Name: a package profile that denies every account
Default: yes
Priority: 1024
Account-Type: Primary
Account:
\trequired\tpam_deny.so
"""


def check(site: Path, *extra: str) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    code, out, err = run_cli(
        "check",
        "--site",
        str(site),
        "--format",
        "json",
        "--controls",
        ",".join(ACCESS_CONTROLS),
        *extra,
    )
    assert out, err
    return code, {(c["host"], c["control"]): c for c in json.loads(out)["controls"]}


def harden(site: Path, *extra: str) -> tuple[int, str]:
    code, out, err = run_cli("harden", "--site", str(site), "--tags", ROLES, "-q", *extra)
    return code, out + err


def observed(result: dict[str, Any]) -> str:
    return " | ".join(str(c["observed"]) for c in result["checks"] if c["outcome"] != "pass")


@pytest.fixture(autouse=True)
def lab_state(lab):  # type: ignore[no-untyped-def]
    """Every test here runs against the session lab (its fixture points CITYGUARD_STATE at it)."""


@pytest.fixture(scope="module")
def first_harden(lab_session, strict_site) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
        return harden(strict_site)


def test_every_access_control_passes_on_every_host(first_harden, lab, strict_site):  # type: ignore[no-untyped-def]
    code, text = first_harden
    assert code == 0, text
    code, results = check(strict_site)
    hosts = {h.name for h in lab.lab.hosts}
    assert {host for host, _ in results} == hosts
    assert {cid for _, cid in results} == set(ACCESS_CONTROLS)
    for (host, control), result in results.items():
        assert result["outcome"] == "pass", (host, control, result["checks"])
    for host in hosts:
        checks = sum(len(r["checks"]) for (h, _), r in results.items() if h == host)
        assert checks >= 100, (host, checks)
    assert code == 0
    root_login = results[("web1", "CG-SSH-001")]["checks"][0]
    assert root_login["observed"] == "PermitRootLogin: no"
    listen = {c["check_id"]: c for c in results[("web1", "CG-SSH-014")]["checks"]}
    assert "[::]:22" in listen["test_ssh::test_sshd_listens_on_address_family[IPv6]"]["observed"]
    assert "0.0.0.0:22" in listen["test_ssh::test_sshd_listens_on_address_family[IPv4]"]["observed"]


def test_drift_fails_the_check_and_harden_repairs_it(first_harden, lab, strict_site):  # type: ignore[no-untyped-def]
    lab.ssh(
        "web1",
        "sed -i 's/pam_unix.so try_first_pass/pam_unix.so nullok try_first_pass/' "
        "/etc/pam.d/common-auth && "
        "printf 'Debian GNU/Linux 12 \\\\n \\\\l\\n' > /etc/issue && "
        "chmod 0755 /etc/update-motd.d/10-uname && "
        "sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\\t99999/' /etc/login.defs",
    )
    code, results = check(strict_site, "--limit", "web1")
    assert code == 1
    failed = {cid for (_, cid), r in results.items() if r["outcome"] == "fail"}
    assert failed == {"CG-ACC-004", "CG-ACC-006", "CG-BAN-001", "CG-BAN-002"}
    assert "pam_unix.so nullok" in observed(results[("web1", "CG-ACC-004")])
    assert "Debian GNU/Linux 12" in observed(results[("web1", "CG-BAN-001")])
    assert "10-uname 0755" in observed(results[("web1", "CG-BAN-002")])
    assert "PASS_MAX_DAYS: 99999" in observed(results[("web1", "CG-ACC-006")])

    code, text = harden(strict_site, "--check", "--limit", "web1")
    assert code == 0, text
    assert "nullok try_first_pass -> try_first_pass" in text  # the diff names the PAM edit
    code, _ = check(strict_site, "--limit", "web1")
    assert code == 1, "--check must not repair anything"

    # the repair runs on every host, a second harden for all but web1: it changes only web1,
    # for every control that failed there (a task that serves several controls names them all)
    code, text = harden(strict_site)
    assert code == 0, text
    assert set(changed_per_host(lab.state_dir)) == {h.name for h in lab.lab.hosts}
    changed = changed_controls_per_host(lab.state_dir)
    assert set(changed) == {"web1"} and changed["web1"] >= failed, changed
    code, results = check(strict_site, "--limit", "web1")
    assert code == 0, {k: observed(r) for k, r in results.items() if r["outcome"] != "pass"}


def test_changes_that_lock_out_sudo_are_rolled_back_without_sudo(first_harden, lab, strict_site):  # type: ignore[no-untyped-def]
    """db1: enabling cityguard's PAM profiles also enables a broken package profile that denies
    every account; web1: cgadmin's NOPASSWD comes from a group rule CG-SUDO-004 would change.
    Both changes break sudo, so neither can be undone by a task: the guard's watcher does it."""
    lab.ssh(
        "db1",
        "DEBIAN_FRONTEND=noninteractive pam-auth-update --package --disable "
        "cityguard-faillock cityguard-faillock-notify && "
        f"printf '{BROKEN_PROFILE}' > /usr/share/pam-configs/zz-broken",
    )
    lab.ssh(
        "web1",
        "echo '%sudo ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/admins && "
        "chmod 0440 /etc/sudoers.d/admins && mv /etc/sudoers.d/cgadmin /root/",
    )
    pam_before = lab.ssh("db1", "cat /etc/pam.d/common-auth /etc/pam.d/common-account")
    sudoers_before = lab.ssh("web1", "cat /etc/sudoers.d/admins; ls /etc/sudoers.d")
    try:
        code, out, err = run_cli(
            "harden",
            "--site",
            str(strict_site),
            "--tags",
            "accounts,sudo",
            "--limit",
            "web1,db1",
            "-q",
        )
        text = out + err
        assert code == 3, text
        assert "PAM change rolled back on db1" in text, text
        assert "sudoers change rolled back on web1" in text, text
        assert "%sudo" in text  # the message says how to approve the group rule
        # lab.ssh is a fresh login with sudo: it works again, and the files are as before
        assert lab.ssh("db1", "cat /etc/pam.d/common-auth /etc/pam.d/common-account") == pam_before
        assert lab.ssh("web1", "cat /etc/sudoers.d/admins; ls /etc/sudoers.d") == sudoers_before
        assert lab.ssh("db1", "ls /var/lib/cityguard/guards") == ""
    finally:
        lab.ssh("db1", "rm -f /usr/share/pam-configs/zz-broken")
        lab.ssh("web1", "rm -f /etc/sudoers.d/admins && mv /root/cgadmin /etc/sudoers.d/")
    code, text = harden(strict_site, "--limit", "web1,db1")
    assert code == 0, text
    code, results = check(strict_site, "--limit", "web1,db1")
    assert code == 0, {k: observed(r) for k, r in results.items() if r["outcome"] != "pass"}
