"""The access area's fact sections: parsers on text as Debian 12 prints it, the snippets on real
files, and the value rules checks record as expected values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cityguard.verify.facts import FileStat, HostFacts, SectionError, gather_script
from cityguard.verify.sections import access_accounts
from cityguard.verify.sections._common import split_grep
from cityguard.verify.sections.access import parse_stat
from cityguard.verify.sections.access_accounts import parse_accounts
from cityguard.verify.sections.access_login import (
    faillock_settings,
    key_values,
    login_defs,
    pam_rules,
    pam_stack,
    pwquality_settings,
    umask_lines,
    valid_shells,
)
from cityguard.verify.sections.access_rules import (
    absent_or,
    as_int,
    at_least,
    mode_and_owner,
    only_from,
    stat_text,
    umask_at_least_as_strict,
    within,
    zero_or_at_least,
)
from cityguard.verify.sections.access_sudoers import parse_sudoers, sudoers_files

# `grep -H ''` over the files, as on a Debian 12 host after cityguard's harden (trimmed)
FILES_OUTPUT = """\
/etc/pam.d/common-auth:#
/etc/pam.d/common-auth:# here are the per-package modules (the "Primary" block)
/etc/pam.d/common-auth:auth\trequisite\tpam_faillock.so preauth
/etc/pam.d/common-auth:auth\t[success=2 default=ignore]\tpam_unix.so try_first_pass
/etc/pam.d/common-auth:auth\t[default=die]\tpam_faillock.so authfail
/etc/pam.d/common-auth:auth\trequisite\t\t\tpam_deny.so
/etc/pam.d/common-auth:auth\trequired\t\t\tpam_permit.so
/etc/pam.d/common-account:account\t[success=2 new_authtok_reqd=done default=ignore]\tpam_unix.so \n\
/etc/pam.d/common-account:account\trequired\tpam_faillock.so \n\
/etc/pam.d/common-password:password\trequisite\t\t\tpam_pwquality.so retry=3
/etc/pam.d/common-password:password\trequisite\tpam_pwhistory.so remember=24 enforce_for_root \
try_first_pass use_authtok
/etc/pam.d/common-password:password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok \
try_first_pass yescrypt
/etc/pam.d/common-session:session\trequired\tpam_unix.so \n\
/etc/security/pwquality.conf:# minlen = 8
/etc/security/pwquality.conf:minlen = 10
/etc/security/pwquality.conf:dictcheck = 1
/etc/security/pwquality.conf.d/50-cityguard.conf:minlen = 14
/etc/security/pwquality.conf.d/50-cityguard.conf:enforce_for_root
/etc/security/pwquality.conf.d/10-early.conf:minlen = 12
/etc/security/pwquality.conf.d/10-early.conf:minclass = 3
/etc/security/faillock.conf:# deny = 3
/etc/security/faillock.conf:deny = 5
/etc/security/faillock.conf:unlock_time = 900
/etc/login.defs:# PASS_MAX_DAYS\tMaximum number of days a password may be used.
/etc/login.defs:PASS_MAX_DAYS\t365
/etc/login.defs:UMASK\t\t027
/etc/login.defs:ENCRYPT_METHOD YESCRYPT
/etc/login.defs:UID_MIN\t\t\t 1000
/etc/sudoers:Defaults\tenv_reset
/etc/sudoers:Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/etc/sudoers:Defaults\tuse_pty
/etc/sudoers:#Defaults:%sudo env_keep += "http_proxy https_proxy"
/etc/sudoers:root\tALL=(ALL:ALL) ALL
/etc/sudoers:%sudo\tALL=(ALL:ALL) ALL
/etc/sudoers:@includedir /etc/sudoers.d
/etc/sudoers.d/README:# As of Debian version 1.7.2p1-1, the default /etc/sudoers file created on
/etc/sudoers.d/cgadmin:cgadmin ALL=(ALL) NOPASSWD:ALL
/etc/sudoers.d/ops:Defaults:alice !authenticate, timestamp_timeout=60
/etc/sudoers.d/ops:User_Alias OPS = alice, bob
/etc/sudoers.d/ops:OPS ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart nginx, \\
/etc/sudoers.d/ops:    /usr/bin/journalctl
/etc/sudoers.d/ops:#1001 ALL=(ALL) ALL
/etc/sudoers.d/ops:# a comment ALL=(ALL) NOPASSWD: ALL
/etc/sudoers.d/zz-cityguard:Defaults use_pty
/etc/sudoers.d/zz-cityguard:Defaults logfile="/var/log/sudo.log"
/etc/sudoers.d/zz-cityguard:Defaults timestamp_timeout=15
/etc/sudoers.d/old.dpkg-dist:ALL ALL=(ALL) NOPASSWD: ALL
/etc/shells:# /etc/shells: valid login shells
/etc/shells:/bin/sh
/etc/shells:/bin/bash
/etc/shells:/usr/sbin/nologin
/etc/issue:Authorised use only.
/etc/profile:if [ "$(id -u)" -eq 0 ]; then umask 022; fi
/etc/profile.d/cityguard-umask.sh:# umask 000 in a comment does not count
/etc/profile.d/cityguard-umask.sh:umask 027
/root/.bashrc:# umask 022
""".splitlines()

# the access-accounts section on a lab host (hashes already reduced to their kind)
ACCOUNTS_OUTPUT = """\
passwd\troot\tx\t0\t0\t/bin/bash
passwd\tdaemon\tx\t1\t1\t/usr/sbin/nologin
passwd\tsync\tx\t4\t65534\t/bin/sync
passwd\tpostgres\tx\t103\t106\t/bin/bash
passwd\tnobody\tx\t65534\t65534\t/usr/sbin/nologin
passwd\tcgadmin\tx\t1000\t1000\t/bin/bash
passwd\told\tother\t1001\t1001\t/bin/sh
shadow\troot\tlocked\t20779\t0\t99999\t7\t
shadow\tdaemon\tlocked\t20779\t0\t99999\t7\t
shadow\tpostgres\tlocked\t20779\t\t\t\t
shadow\tcgadmin\tlocked\t20779\t0\t99999\t7\t
shadow\told\thash:y\t20700\t1\t365\t7\t45
shadow\tghost\tempty\t20700\t\t\t\t
group0\troot
useradd\tGROUP=100
useradd\tINACTIVE=-1
connection\tcgadmin
""".splitlines()


@pytest.fixture(scope="module")
def files() -> dict[str, list[str]]:
    return split_grep(FILES_OUTPUT)


def test_files_keep_their_lines_in_order(files: dict[str, list[str]]) -> None:
    assert files["/etc/security/faillock.conf"] == ["# deny = 3", "deny = 5", "unlock_time = 900"]
    assert files["/etc/issue"] == ["Authorised use only."]


def test_pam_stack_reads_rules_with_bracketed_controls(files: dict[str, list[str]]) -> None:
    stack = pam_stack(files, "/etc/pam.d/common-auth")
    assert [r.module for r in stack] == [
        "pam_faillock.so",
        "pam_unix.so",
        "pam_faillock.so",
        "pam_deny.so",
        "pam_permit.so",
    ]
    unix = stack[1]
    assert unix.control == "[success=2 default=ignore]"
    assert unix.args == ("try_first_pass",)
    assert unix.text == "auth [success=2 default=ignore] pam_unix.so try_first_pass"
    assert not unix.has("nullok")


def test_pam_options_flags_and_values(files: dict[str, list[str]]) -> None:
    (history,) = pam_rules(files, "/etc/pam.d/common-password", "pam_pwhistory.so")
    assert history.option("remember") == "24"
    assert history.option("enforce_for_root") == ""
    assert history.option("debug") is None


def test_pwquality_conf_d_files_are_read_in_name_order_after_the_main_file(
    files: dict[str, list[str]],
) -> None:
    settings = pwquality_settings(files)
    assert settings["minlen"] == ("14", "/etc/security/pwquality.conf.d/50-cityguard.conf")
    assert settings["minclass"] == ("3", "/etc/security/pwquality.conf.d/10-early.conf")
    assert settings["dictcheck"] == ("1", "/etc/security/pwquality.conf")
    assert settings["enforce_for_root"][0] == ""
    # options on the PAM line win over the files
    assert settings["retry"] == ("3", "/etc/pam.d/common-password")


def test_faillock_options_on_the_pam_line_win() -> None:
    lines = [
        "/etc/security/faillock.conf:deny = 5",
        "/etc/pam.d/common-auth:auth required pam_faillock.so preauth deny=3",
    ]
    settings = faillock_settings(split_grep(lines))
    assert settings["deny"] == ("3", "/etc/pam.d/common-auth")
    assert "preauth" not in settings


def test_login_defs_skips_comments_and_splits_on_any_whitespace(
    files: dict[str, list[str]],
) -> None:
    defs = login_defs(files)
    assert defs == {
        "PASS_MAX_DAYS": "365",
        "UMASK": "027",
        "ENCRYPT_METHOD": "YESCRYPT",
        "UID_MIN": "1000",
    }
    assert key_values(["a = 1", "a = 2", "flag"]) == {"a": "2", "flag": ""}


def test_umask_lines_find_commands_not_comments(files: dict[str, list[str]]) -> None:
    assert umask_lines(files) == [
        ("/etc/profile", "022"),
        ("/etc/profile.d/cityguard-umask.sh", "027"),
    ]


def test_valid_shells_leave_out_nologin(files: dict[str, list[str]]) -> None:
    assert valid_shells(files) == {"/bin/sh", "/bin/bash"}


def test_sudoers_files_are_read_as_sudo_reads_them(files: dict[str, list[str]]) -> None:
    assert sudoers_files(files) == [
        "/etc/sudoers",
        "/etc/sudoers.d/README",
        "/etc/sudoers.d/cgadmin",
        "/etc/sudoers.d/ops",
        "/etc/sudoers.d/zz-cityguard",
    ]


def test_sudoers_defaults_scopes_negation_and_order(files: dict[str, list[str]]) -> None:
    sudoers = parse_sudoers(files)
    assert sudoers.effective("use_pty").path == "/etc/sudoers.d/zz-cityguard"
    assert sudoers.effective("logfile").value == "/var/log/sudo.log"
    assert sudoers.effective("secure_path").value.startswith("/usr/local/sbin")
    alice = [d for d in sudoers.defaults if d.scope == ":alice"]
    assert [(d.name, d.value, d.negated) for d in alice] == [
        ("authenticate", None, True),
        ("timestamp_timeout", "60", False),
    ]
    # the commented-out Defaults line is not a setting
    assert not [d for d in sudoers.defaults if d.name == "env_keep"]


def test_sudoers_rules_join_continuations_and_skip_aliases_and_comments(
    files: dict[str, list[str]],
) -> None:
    rules = parse_sudoers(files).rules
    # `#1001` followed by a rule is a user id, not a comment (sudoers(5))
    assert [r.principal for r in rules] == ["root", "%sudo", "cgadmin", "OPS", "#1001"]
    ops = rules[3]
    assert ops.nopasswd and ops.text.endswith("/usr/bin/journalctl")
    assert [r.principal for r in rules if r.nopasswd] == ["cgadmin", "OPS"]


def test_accounts_parse_every_kind_of_line() -> None:
    accounts = parse_accounts(ACCOUNTS_OUTPUT)
    assert accounts.passwd["postgres"].shell == "/bin/bash"
    assert accounts.passwd["old"].password == "other"
    assert accounts.shadow["old"].has_password and accounts.shadow["old"].max_days == "365"
    assert accounts.shadow["ghost"].password == "empty"
    assert accounts.gid0_groups == ["root"]
    assert accounts.useradd_defaults["INACTIVE"] == "-1"
    assert accounts.connection_user == "cgadmin"
    names = sorted(e.name for e in accounts.system_accounts(1000))
    assert names == ["daemon", "nobody", "postgres", "sync"]


def test_stat_lines_become_file_stats() -> None:
    stats = parse_stat(
        [
            "/etc/ssh/sshd_config.d/00-cityguard.conf\t600\troot\troot\tregular file",
            "stat: cannot statx '/x': No such file or directory",
        ]
    )
    assert stats == {
        "/etc/ssh/sshd_config.d/00-cityguard.conf": FileStat(
            "/etc/ssh/sshd_config.d/00-cityguard.conf", 0o600, "root", "root", "regular file"
        )
    }
    assert stat_text(stats["/etc/ssh/sshd_config.d/00-cityguard.conf"]) == "root:root 0600"
    assert stat_text(None) == "absent"


# ------------------------------------------------------------------------------ the snippets


def run(command: str) -> list[str]:
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_the_shadow_snippet_never_prints_a_hash(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    yescrypt = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
    sha512 = "$6$rounds=5000$salt$" + "x" * 86
    shadow.write_text(
        f"root:*:20779:0:99999:7:::\nalice:{yescrypt}:20700:1:365:7:45::\n"
        f"bob:!{sha512}:20700::::::\ncarol::20700::::::\n"
    )
    lines = run(access_accounts._SHADOW_AWK.replace("/etc/shadow", str(shadow)))
    assert lines == [
        "shadow\troot\tlocked\t20779\t0\t99999\t7\t",
        "shadow\talice\thash:y\t20700\t1\t365\t7\t45",
        "shadow\tbob\tlocked\t20700\t\t\t\t",
        "shadow\tcarol\tempty\t20700\t\t\t\t",
    ]
    assert not any(secret in "\n".join(lines) for secret in ("F5Jx5f", "salt", "xxxx"))


def test_the_sections_join_the_single_gather_script() -> None:
    script = gather_script(set())
    for name in ("access-files", "access-accounts", "access-stat"):
        assert f"@@cityguard-section {name}" in script


def test_a_section_that_could_not_gather_is_an_error_not_a_failure() -> None:
    facts = HostFacts(errors={"access-accounts": "/etc/shadow is not readable"})
    with pytest.raises(SectionError, match="not readable"):
        facts.section("access-accounts")


# ----------------------------------------------------------------------------------- rules


def test_as_int_reads_the_leading_number() -> None:
    assert as_int("14 (/etc/security/pwquality.conf)") == 14
    assert as_int("-1") == -1
    assert as_int(None) is None and as_int("yes") is None


def test_numeric_rules() -> None:
    assert at_least(900) == "900" and at_least(900) != "899" and at_least(900) != None  # noqa: E711
    assert within(1, 5) == 5 and within(1, 5) != 0 and within(1, 5) != "absent"
    assert zero_or_at_least(900) == "0" and zero_or_at_least(900) != "600"
    assert str(within(1, 365)) == "1 to 365"


def test_only_from_accepts_a_subset_and_never_nothing() -> None:
    rule = only_from(["aes256-gcm@openssh.com", "aes128-ctr"])
    assert rule == "aes128-ctr"
    assert rule != "aes128-ctr,3des-cbc"
    assert rule != ""


def test_umask_rule_needs_every_masked_bit() -> None:
    rule = umask_at_least_as_strict("027")
    assert rule == "027" and rule == "077" and rule == "0027"
    assert rule != "022" and rule != "007" and rule != "27x"


def test_mode_and_owner_and_absent() -> None:
    rule = mode_and_owner(0o600, ["root:root"])
    assert rule == "root:root 0600" and rule == "root:root 0400"
    assert rule != "root:root 0644" and rule != "root:ssh 0600" and rule != "absent"
    assert absent_or(rule) == "absent"
    assert str(absent_or(rule)) == "absent, or root:root, 0600 or stricter"
