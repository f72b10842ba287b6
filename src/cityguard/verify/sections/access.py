"""What the access checks read from a host, as two fact sections, kept apart from the parsers
so the list of files read stays in one place:

- `access-files`: the text of the configuration files the checks read (PAM stacks and module
  settings, login.defs, sudoers, banners, shell start-up files), as `path:line`;
- `access-stat`: owner and mode of files whose names differ between hosts (sudoers includes,
  dynamic motd scripts, the sudo log).

What the text means is read by `access_login` (PAM, login.defs, umask, shells) and
`access_sudoers`; the account databases are `access_accounts`; the value rules checks record
as expected values are `access_rules`.
"""

from __future__ import annotations

from cityguard.verify.facts import FileStat, register_section
from cityguard.verify.sections._common import split_grep

# ------------------------------------------------------------------------------- what to read

PAM_COMMON = (
    "/etc/pam.d/common-auth",
    "/etc/pam.d/common-account",
    "/etc/pam.d/common-password",
    "/etc/pam.d/common-session",
    "/etc/pam.d/common-session-noninteractive",
)
PWQUALITY_CONF = "/etc/security/pwquality.conf"
PWQUALITY_DIR = "/etc/security/pwquality.conf.d"
FAILLOCK_CONF = "/etc/security/faillock.conf"
LOGIN_DEFS = "/etc/login.defs"
SUDOERS = "/etc/sudoers"
SUDOERS_DIR = "/etc/sudoers.d"
SHELLS = "/etc/shells"
BANNER_FILES = ("/etc/issue", "/etc/issue.net", "/etc/motd")
# files whose `umask` lines set the umask of login shells, root's included
UMASK_FILES = (
    "/etc/profile",
    "/etc/bash.bashrc",
    "/root/.bashrc",
    "/root/.profile",
    "/root/.bash_profile",
)
PROFILE_DIR = "/etc/profile.d"
MOTD_SCRIPTS_DIR = "/etc/update-motd.d"
DEFAULT_SUDO_LOG = "/var/log/sudo.log"

_TEXT_FILES = " ".join(
    [
        *PAM_COMMON,
        PWQUALITY_CONF,
        f"{PWQUALITY_DIR}/*.conf",
        FAILLOCK_CONF,
        LOGIN_DEFS,
        SUDOERS,
        f"{SUDOERS_DIR}/*",
        SHELLS,
        *BANNER_FILES,
        *UMASK_FILES,
        f"{PROFILE_DIR}/*.sh",
    ]
)
# grep prints nothing for an absent file (2>/dev/null) and for an empty one; `stat` tells apart
FILES_COMMAND = f"grep -H '' {_TEXT_FILES} 2>/dev/null; true"

STAT_COMMAND = (
    # the sudo log named in sudoers (any of them), besides the default path
    "logs=$(sed -n 's/.*logfile *= *\"\\{0,1\\}\\([^\",]*\\).*/\\1/p' "
    f"{SUDOERS} {SUDOERS_DIR}/* 2>/dev/null | sort -u); "
    f"stat -c '%n\t%a\t%U\t%G\t%F' {SUDOERS_DIR}/* {MOTD_SCRIPTS_DIR}/* "
    f"{DEFAULT_SUDO_LOG} $logs 2>/dev/null; true"
)


def parse_stat(lines: list[str]) -> dict[str, FileStat]:
    stats = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 5 and parts[1].isdigit():
            stats[parts[0]] = FileStat(parts[0], int(parts[1], 8), parts[2], parts[3], parts[4])
    return stats


# `path:line` lines of absolute paths: the shared grep parser (each result maps a path to its
# lines in order)
register_section("access-files", FILES_COMMAND, split_grep)
register_section("access-stat", STAT_COMMAND, parse_stat)
