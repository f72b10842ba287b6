"""Drift outside cityguard's own files, on a real lab host: harden repairs what overrides its
settings (or exits 1 naming control and file), never says success while check fails.

Each test drifts web1 the way an administrator would (a drop-in sorting before cityguard's, a
later sysctl.d or journald file, PAM module options, an sshd Match block) and proves the
effective state with `cityguard check`, before and after `cityguard harden`.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import cli_run
import pytest
from selections import hardening_controls

from cityguard.evidence import SqliteStore

pytestmark = pytest.mark.integration

HOST = "web1"


def run_cli(*args: str) -> tuple[int, str]:
    """Exit code and everything the command printed (stdout, then stderr)."""
    code, out, err = cli_run.run_cli(*args)
    return code, out + err


def harden(lab, *extra: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return run_cli("harden", "--site", str(lab.site_file), "--limit", HOST, "-q", *extra)


def failing(lab, *controls: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """control -> what its failing checks observed, for the given controls (all when none)
    that fail `check` on the host."""
    _, out, err = cli_run.run_cli(
        "check",
        "--site",
        str(lab.site_file),
        "--limit",
        HOST,
        "--format",
        "json",
        "--controls",  # the hardening controls: the IPv6 ones pass only after an IPv6 rollout
        ",".join(hardening_controls(lab.site_file)),
    )
    assert out, err
    report: dict[str, Any] = json.loads(out)
    return {
        c["control"]: "; ".join(
            f"{k['observed']} ({k['reason']})" for k in c["checks"] if k["outcome"] == "fail"
        )
        for c in report["controls"]
        if c["outcome"] == "fail" and (not controls or c["control"] in controls)
    }


@pytest.fixture(scope="module")
def hardened(lab_session) -> None:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
        code, text = run_cli("harden", "--site", str(lab_session.site_file), "--limit", HOST, "-q")
    assert code == 0, text


DRIFT = {
    # sshd keeps the first value it reads: this name sorts before 00-cityguard.conf
    "CG-SSH-001": "echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/00-a-local.conf",
    # options on the PAM line win over faillock.conf
    "CG-ACC-002": "sed -i '/pam_faillock.so preauth/ s/$/ deny=10/' "
    "/etc/pam.d/common-auth && grep -q 'preauth deny=10' /etc/pam.d/common-auth",
    # a later sysctl.d file wins at boot; the runtime value drifted as well
    "CG-NET-001": "echo 'net.ipv4.conf.all.accept_redirects = 1' > /etc/sysctl.d/99-zzz-local.conf"
    " && sysctl -qw net.ipv4.conf.all.accept_redirects=1",
    # a later journald drop-in wins
    "CG-LOG-001": "printf '[Journal]\\nStorage=volatile\\n' "
    "> /etc/systemd/journald.conf.d/99-local.conf",
    # a later pwquality.conf.d file wins
    "CG-ACC-001": "echo 'minlen = 6' > /etc/security/pwquality.conf.d/99-local.conf",
}
OVERRIDING_FILES = {
    "CG-SSH-001": "00-a-local.conf",
    "CG-ACC-002": "/etc/pam.d/common-auth",
    "CG-NET-001": "99-zzz-local.conf",
    "CG-LOG-001": "99-local.conf",
    "CG-ACC-001": "99-local.conf",
}


def test_drift_outside_cityguards_files_is_repaired(hardened, lab) -> None:  # type: ignore[no-untyped-def]
    for command in DRIFT.values():
        lab.ssh(HOST, command)
    before = failing(lab, *DRIFT)
    assert set(before) == set(DRIFT), before  # every drift shows in check, naming its file
    for control, name in OVERRIDING_FILES.items():
        assert name in before[control], (control, before[control])

    code, text = harden(lab)
    assert code == 0, text  # every override repaired: nothing left failing
    assert "still fails" not in text
    assert failing(lab) == {}
    # the overriding lines are disabled in place, naming the control
    assert "# cityguard (CG-SSH-001) disabled: PermitRootLogin yes" in lab.ssh(
        HOST, "cat /etc/ssh/sshd_config.d/00-a-local.conf"
    )
    assert "deny=10" not in lab.ssh(HOST, "cat /etc/pam.d/common-auth")
    assert lab.ssh(HOST, "sysctl -n net.ipv4.conf.all.accept_redirects").strip() == "0"
    with SqliteStore(lab.state_dir / "evidence.sqlite") as store:
        run = store.latest_run("harden")
        assert run is not None and run.exit_code == 0
        changed = {c.control_id for c in store.changes(run.id)}
    assert set(DRIFT) <= changed


def test_sysctl_forwarding_reset_does_not_undo_redirects(hardened, lab) -> None:  # type: ignore[no-untyped-def]
    """Turning forwarding off makes the kernel set accept_redirects back to 1: applied in
    name order (the old code) the run ended with it at 1 and CG-NET-001 failing."""
    lab.ssh(HOST, "sysctl -qw net.ipv4.ip_forward=1")  # the kernel sets accept_redirects to 0
    assert lab.ssh(HOST, "sysctl -n net.ipv4.conf.all.accept_redirects").strip() == "0"
    code, text = harden(lab, "--tags", "sysctl")
    assert code == 0, text
    assert lab.ssh(HOST, "sysctl -n net.ipv4.ip_forward").strip() == "0"
    assert lab.ssh(HOST, "sysctl -n net.ipv4.conf.all.accept_redirects").strip() == "0"
    assert failing(lab, "CG-NET-001", "CG-NET-010") == {}


def test_a_match_block_that_weakens_a_control_fails_check_and_is_hardened(hardened, lab) -> None:  # type: ignore[no-untyped-def]
    lab.ssh(
        HOST,
        "printf 'Match Address 10.0.0.0/8\\n    PermitRootLogin yes\\n' "
        "> /etc/ssh/sshd_config.d/50-local-match.conf && sshd -t",
    )
    before = failing(lab, "CG-SSH-001")
    assert "Match Address 10.0.0.0/8" in before.get("CG-SSH-001", ""), before
    assert "50-local-match.conf" in before["CG-SSH-001"]
    code, text = harden(lab, "--tags", "ssh")
    assert code == 0, text
    assert failing(lab, "CG-SSH-001") == {}
    assert "disabled: PermitRootLogin yes" in lab.ssh(
        HOST, "cat /etc/ssh/sshd_config.d/50-local-match.conf"
    )


def test_a_non_login_ssh_session_gets_the_umask(hardened, lab) -> None:  # type: ignore[no-untyped-def]
    """`ssh host cmd` runs no profile script: only pam_umask gives it 027."""
    done = subprocess.run(
        ["ssh", "-F", str(lab.lab.ssh_config), "-o", "ControlPath=none", HOST, "umask"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "0027"
    assert failing(lab, "CG-ACC-010") == {}


def test_an_unconfigured_required_parameter_fails_harden_not_silently(  # type: ignore[no-untyped-def]
    hardened, lab, strict_site
) -> None:
    """The strict baseline's CG-LOG-007 needs remote_target: harden cannot make it pass, and
    says so with exit 1 instead of 0."""
    code, text = run_cli(
        "harden", "--site", str(strict_site), "--limit", HOST, "--tags", "logging", "-q"
    )
    assert code == 1, text
    line = next(ln for ln in text.splitlines() if "CG-LOG-007" in ln and "still fails" in ln)
    assert "remote_target" in line


def test_lab_host_keeps_file_capabilities_and_has_linux_base(lab) -> None:  # type: ignore[no-untyped-def]
    """As on any Debian host: an unprivileged user pings (ping's cap_net_raw survived the
    image's unpacking) and linux-base is installed (scanners look for it)."""
    done = subprocess.run(
        [
            "ssh",
            "-F",
            str(lab.lab.ssh_config),
            "-o",
            "ControlPath=none",
            HOST,
            "ping -c 1 -W 2 127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "install ok installed" in lab.ssh(HOST, "dpkg-query -W -f='${Status}' linux-base")


def test_an_override_harden_cannot_change_fails_naming_control_and_file(hardened, lab) -> None:  # type: ignore[no-untyped-def]
    """A later sysctl.d file on a read-only mount: harden cannot disable its line, so it must
    not say success: the host's run fails (3) naming the file, and the check harden runs
    afterwards names the control, the value in force and the file."""
    pinned = "/etc/sysctl.d/99-zzz-pinned.conf"
    lab.ssh(
        HOST,
        f"echo 'net.ipv4.conf.all.accept_redirects = 1' > {pinned} && mount --bind {pinned} "
        f"{pinned} && mount -o remount,ro,bind {pinned}",
    )
    try:
        code, text = harden(lab, "--tags", "sysctl")
        assert code == 3, text
        assert f"{pinned} overrides CG-NET-001" in text, text
        line = next(ln for ln in text.splitlines() if "CG-NET-001" in ln and "still fails" in ln)
        assert pinned in line and "observed 1" in line, line
    finally:
        lab.ssh(HOST, f"umount {pinned}; rm -f {pinned}")
    code, text = harden(lab, "--tags", "sysctl")
    assert code == 0, text
