"""sshd's Match contexts, the file that sets an option, and a non-login session's umask: the
parsers of what the gathering prints, and the awk that turns Match lines into contexts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cityguard.verify.facts import SectionError
from cityguard.verify.sections import access_session, access_sshd


def contexts_for(tmp_path: Path, text: str) -> str:
    """The gathering's first half (Match lines -> contexts) on a file, sshd -T -C echoed."""
    conf = tmp_path / "50-match.conf"
    conf.write_text(text)
    command = (
        access_sshd.MATCH_COMMAND.replace(f"{access_sshd.SSHD_DROPINS}/*.conf", str(conf))
        .replace(access_sshd.SSHD_CONFIG, "/dev/null")
        .replace("command -v sshd", "true")
        .replace('sshd -T -C "$spec"', 'echo permitrootlogin yes; echo spec "$spec"')
    )
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout


def test_each_match_line_becomes_a_context_with_its_first_positive_pattern(
    tmp_path: Path,
) -> None:
    out = contexts_for(
        tmp_path,
        "Match Address 10.0.0.0/8,!10.1.0.0/16\n  PermitRootLogin yes\n"
        "match user !root,backup* LocalPort 2222\n  X11Forwarding yes\nMatch All\n",
    )
    contexts = access_sshd.parse_match(out.splitlines())
    assert [c.spec for c in contexts] == [
        "user=cityguard-probe,host=probe.invalid,addr=10.0.0.0",
        "user=backup1,host=probe.invalid,addr=192.0.2.1,lport=2222",
    ]
    assert contexts[0].where.endswith("50-match.conf:1")
    assert contexts[0].option("PermitRootLogin") == "yes"
    assert "Match Address 10.0.0.0/8" in contexts[0].label


def test_a_context_sshd_refused_is_an_error_not_a_value() -> None:
    lines = [
        "@@context\tuser=x,host=h,addr=1.2.3.4\t/etc/ssh/sshd_config:9\tMatch User x",
        "@@fail",
        "Bad Match condition",
    ]
    [context] = access_sshd.parse_match(lines)
    with pytest.raises(SectionError, match="Bad Match condition"):
        context.option("PermitRootLogin")


def test_first_setting_follows_includes_in_name_order_and_stops_at_match() -> None:
    files = {
        "/etc/ssh/sshd_config": [
            "# comment",
            "Include /etc/ssh/sshd_config.d/*.conf",
            "PermitRootLogin yes",
            "X11Forwarding yes",
        ],
        "/etc/ssh/sshd_config.d/00-cityguard.conf": ["PermitRootLogin no"],
        "/etc/ssh/sshd_config.d/00-a-local.conf": [
            "permitrootlogin=without-password",
            "Match User x",
            "MaxAuthTries 9",
        ],
    }
    assert access_sshd.first_setting(files, "PermitRootLogin") == (
        "/etc/ssh/sshd_config.d/00-a-local.conf:1"
    )
    assert access_sshd.first_setting(files, "X11Forwarding") == "/etc/ssh/sshd_config:4"
    assert access_sshd.first_setting(files, "MaxAuthTries") is None  # only inside Match


def test_session_umask_read_from_the_process_sshd_started() -> None:
    session = access_session.parse_session(["umask\t0022", "process\tbash -c sudo ... "])
    assert session.short_umask == "022" and session.process == "bash -c sudo ..."
    assert access_session.parse_session([]).short_umask is None
