"""Facts for the access area (SSH, accounts and PAM, sudo, login banners), and their parsers.

Three sections join the one round trip:

- `access-files`: the text of the configuration files the checks read (PAM stacks and module
  settings, login.defs, sudoers, banners, shell start-up files), as `path:line`;
- `access-accounts`: passwd, shadow and group reduced on the host to what the checks need.
  Password hashes never leave the host: a shadow password field travels only as its kind
  (`empty`, `locked`, `hash:<scheme id>` or `other`);
- `access-stat`: owner and mode of files whose names differ between hosts (sudoers includes,
  dynamic motd scripts, the sudo log).

The parsers are pure functions of the lines the snippets print. The small value rules at the
end (`at_least`, `within`, ...) let a check record a rule as its expected value.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cityguard.verify.facts import FileStat, register_section

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

_SHADOW_AWK = (
    r"""awk -F: '{ p = $2; k = "other";"""
    r""" if (p == "") k = "empty";"""
    r""" else if (p ~ /^[!*]/) k = "locked";"""
    r""" else if (match(p, /^\$[^$]+\$/)) k = "hash:" substr(p, 2, RLENGTH - 2);"""
    r""" printf "shadow\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", $1, k, $3, $4, $5, $6, $7 }'"""
    " /etc/shadow"
)
ACCOUNTS_COMMAND = "; ".join(
    [
        "[ -r /etc/shadow ] || { echo '@@error'; echo '/etc/shadow is not readable'; exit 0; }",
        # the passwd password field travels as its kind too: x (shadowed), empty or other
        r"""awk -F: '{ k = ($2 == "x") ? "x" : ($2 == "" ? "empty" : "other");"""
        r""" printf "passwd\t%s\t%s\t%s\t%s\t%s\n", $1, k, $3, $4, $7 }' /etc/passwd""",
        _SHADOW_AWK,
        r"""awk -F: '$3 == "0" { printf "group0\t%s\n", $1 }' /etc/group""",
        r"useradd -D 2>/dev/null | sed 's/^/useradd\t/'",
        # the account the checks connect as (sudo sets SUDO_USER): its own rules stay allowed
        r"""printf 'connection\t%s\n' "${SUDO_USER:-}" """,
    ]
)

STAT_COMMAND = (
    # the sudo log named in sudoers (any of them), besides the default path
    "logs=$(sed -n 's/.*logfile *= *\"\\{0,1\\}\\([^\",]*\\).*/\\1/p' "
    f"{SUDOERS} {SUDOERS_DIR}/* 2>/dev/null | sort -u); "
    f"stat -c '%n\t%a\t%U\t%G\t%F' {SUDOERS_DIR}/* {MOTD_SCRIPTS_DIR}/* "
    f"{DEFAULT_SUDO_LOG} $logs 2>/dev/null; true"
)


# -------------------------------------------------------------------------------- text files


def parse_files(lines: list[str]) -> dict[str, list[str]]:
    """`path:line` (grep -H) -> path -> its lines, in order."""
    files: dict[str, list[str]] = {}
    for line in lines:
        path, sep, text = line.partition(":")
        if sep and path.startswith("/"):
            files.setdefault(path, []).append(text)
    return files


@dataclass(frozen=True)
class PamLine:
    """One rule of a PAM stack: `auth [success=1 default=ignore] pam_unix.so nullok`."""

    kind: str
    control: str
    module: str
    args: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join([self.kind, self.control, self.module, *self.args])

    def has(self, flag: str) -> bool:
        return flag in self.args

    def option(self, name: str) -> str | None:
        """The value of `name=value`, "" for a bare `name`, None when absent."""
        for arg in self.args:
            key, sep, value = arg.partition("=")
            if key == name:
                return value if sep else ""
        return None


_PAM_RULE = re.compile(r"^-?(auth|account|password|session)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


def pam_stack(files: Mapping[str, list[str]], path: str) -> list[PamLine]:
    """The rules of one PAM file, comments dropped (`@include` lines are not followed)."""
    rules = []
    for raw in files.get(path, []):
        text = raw.split("#", 1)[0].strip()
        match = _PAM_RULE.match(text)
        if match:
            kind, control, module, args = match.groups()
            rules.append(PamLine(kind, " ".join(control.split()), module, tuple(args.split())))
    return rules


def pam_rules(files: Mapping[str, list[str]], path: str, module: str) -> list[PamLine]:
    return [rule for rule in pam_stack(files, path) if rule.module.endswith(module)]


def key_values(lines: Iterable[str], separator: str | None = "=") -> dict[str, str]:
    """`key = value` lines (or `KEY value` with separator None); a bare flag maps to ""; the
    last occurrence wins, as in the libraries that read these files."""
    values: dict[str, str] = {}
    for raw in lines:
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if separator is None:
            key, value = [*text.split(None, 1), ""][:2]
        else:
            key, _, value = text.partition(separator)
        values[key.strip()] = value.strip().strip('"')
    return values


def login_defs(files: Mapping[str, list[str]]) -> dict[str, str]:
    return key_values(files.get(LOGIN_DEFS, []), separator=None)


def pwquality_settings(files: Mapping[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Effective pam_pwquality settings -> (value, where it was set).

    libpwquality reads pwquality.conf, then pwquality.conf.d/*.conf in name order (a later value
    wins); options on the pam_pwquality line of common-password win over both.
    """
    sources = [PWQUALITY_CONF, *sorted(p for p in files if p.startswith(PWQUALITY_DIR + "/"))]
    settings: dict[str, tuple[str, str]] = {}
    for path in sources:
        for key, value in key_values(files.get(path, [])).items():
            settings[key] = (value, path)
    for rule in pam_rules(files, "/etc/pam.d/common-password", "pam_pwquality.so"):
        for arg in rule.args:
            key, _, value = arg.partition("=")
            settings[key] = (value, "/etc/pam.d/common-password")
    return settings


def faillock_settings(files: Mapping[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Effective pam_faillock settings: faillock.conf, overridden by options on its PAM lines."""
    settings = {k: (v, FAILLOCK_CONF) for k, v in key_values(files.get(FAILLOCK_CONF, [])).items()}
    for path in ("/etc/pam.d/common-auth", "/etc/pam.d/common-account"):
        for rule in pam_rules(files, path, "pam_faillock.so"):
            for arg in rule.args:
                key, _, value = arg.partition("=")
                if key not in ("preauth", "authfail", "authsucc"):
                    settings[key] = (value, path)
    return settings


def umask_lines(files: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """(file, umask value) for each `umask NNN` command in the shell start-up files."""
    paths = [*UMASK_FILES, *sorted(p for p in files if p.startswith(PROFILE_DIR + "/"))]
    found = []
    for path in paths:
        for raw in files.get(path, []):
            text = raw.split("#", 1)[0]
            for match in re.finditer(r"(?:^|[;&|\s])umask\s+(0?[0-7]{3})\b", text):
                found.append((path, match.group(1)))
    return found


def valid_shells(files: Mapping[str, list[str]]) -> set[str]:
    """Login shells: /etc/shells minus nologin (as CIS reads it)."""
    return {
        line.strip()
        for line in files.get(SHELLS, [])
        if line.strip().startswith("/") and not line.strip().endswith("nologin")
    }


# ---------------------------------------------------------------------------------- sudoers


@dataclass(frozen=True)
class SudoDefault:
    """One setting of a `Defaults` line: `use_pty`, `!authenticate`, `timestamp_timeout=15`."""

    path: str
    scope: str  # "" for plain Defaults, else e.g. ":alice" or ">root"
    name: str
    value: str | None  # None for a flag
    negated: bool


@dataclass(frozen=True)
class SudoRule:
    """A user specification: `alice ALL=(ALL) NOPASSWD: ALL`."""

    path: str
    principal: str
    text: str

    @property
    def nopasswd(self) -> bool:
        return re.search(r"\bNOPASSWD\s*:", self.text) is not None


@dataclass
class Sudoers:
    defaults: list[SudoDefault] = field(default_factory=list)
    rules: list[SudoRule] = field(default_factory=list)

    def global_values(self, name: str) -> list[SudoDefault]:
        """Plain `Defaults` settings of `name`, in the order sudo applies them."""
        return [d for d in self.defaults if d.name == name and not d.scope]

    def effective(self, name: str) -> SudoDefault | None:
        values = self.global_values(name)
        return values[-1] if values else None


def sudoers_files(files: Mapping[str, list[str]]) -> list[str]:
    """/etc/sudoers, then the includedir files sudo reads (names with '.' or '~' are skipped)."""
    included = sorted(
        p
        for p in files
        if p.startswith(SUDOERS_DIR + "/")
        and "." not in p.rsplit("/", 1)[1]
        and not p.endswith("~")
    )
    return [SUDOERS, *included]


def _logical_lines(lines: list[str]) -> list[str]:
    joined, current = [], ""
    for raw in lines:
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        joined.append(current + raw)
        current = ""
    if current:
        joined.append(current)
    return joined


def _strip_comment(line: str) -> str:
    # '#' starts a comment unless it is #include/#includedir or a uid (#1000)
    stripped = line.strip()
    if re.match(r"^#include(dir)?\s", stripped):
        return stripped
    return re.sub(r"(^|\s)#(?!\d).*$", "", stripped).strip()


def _split_settings(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace = ","
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return [part.strip() for part in lexer if part.strip()]
    except ValueError:  # an unbalanced quote: fall back to a plain split
        return [part.strip() for part in text.split(",") if part.strip()]


def parse_sudoers(files: Mapping[str, list[str]]) -> Sudoers:
    sudoers = Sudoers()
    for path in sudoers_files(files):
        for raw in _logical_lines(files.get(path, [])):
            text = _strip_comment(raw)
            if not text or text.startswith(("#include", "@include")):
                continue
            match = re.match(r"^Defaults([:@>!]\S+)?\s+(.*)$", text)
            if match:
                scope = match.group(1) or ""
                for setting in _split_settings(match.group(2)):
                    name, sep, value = setting.partition("=")
                    name = name.strip().rstrip("+-").strip()
                    negated = name.startswith("!")
                    sudoers.defaults.append(
                        SudoDefault(
                            path,
                            scope,
                            name.lstrip("!").strip(),
                            value.strip().strip('"') if sep else None,
                            negated,
                        )
                    )
                continue
            if re.match(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\s", text):
                continue
            principal = text.split(None, 1)[0]
            sudoers.rules.append(SudoRule(path, principal, " ".join(text.split())))
    return sudoers


# --------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str  # "x" (shadowed), "empty" or "other": the field itself never leaves the host
    uid: int
    gid: int
    shell: str


@dataclass(frozen=True)
class ShadowEntry:
    name: str
    password: str  # "empty", "locked", "hash:<id>" (y = yescrypt, 6 = sha512, ...) or "other"
    last_change: str
    min_days: str
    max_days: str
    warn_days: str
    inactive_days: str

    @property
    def has_password(self) -> bool:
        return self.password.startswith("hash:")


@dataclass
class Accounts:
    passwd: dict[str, PasswdEntry] = field(default_factory=dict)
    shadow: dict[str, ShadowEntry] = field(default_factory=dict)
    gid0_groups: list[str] = field(default_factory=list)
    useradd_defaults: dict[str, str] = field(default_factory=dict)
    connection_user: str = ""

    def system_accounts(self, uid_min: int) -> list[PasswdEntry]:
        """Accounts below UID_MIN (and nobody), root excepted."""
        return [
            e
            for e in self.passwd.values()
            if e.name != "root" and (e.uid < uid_min or e.uid == 65534)
        ]


def parse_accounts(lines: list[str]) -> Accounts:
    accounts = Accounts()
    for line in lines:
        parts = line.split("\t")
        kind = parts[0]
        if kind == "passwd" and len(parts) == 6 and parts[3].isdigit() and parts[4].isdigit():
            name = parts[1]
            accounts.passwd[name] = PasswdEntry(
                name, parts[2], int(parts[3]), int(parts[4]), parts[5]
            )
        elif kind == "shadow" and len(parts) == 8:
            accounts.shadow[parts[1]] = ShadowEntry(*parts[1:8])
        elif kind == "group0" and len(parts) == 2:
            accounts.gid0_groups.append(parts[1])
        elif kind == "useradd" and len(parts) == 2:
            key, _, value = parts[1].partition("=")
            accounts.useradd_defaults[key] = value
        elif kind == "connection" and len(parts) == 2:
            accounts.connection_user = parts[1].strip()
    return accounts


# -------------------------------------------------------------------------------------- stat


def parse_stat(lines: list[str]) -> dict[str, FileStat]:
    stats = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 5 and parts[1].isdigit():
            stats[parts[0]] = FileStat(parts[0], int(parts[1], 8), parts[2], parts[3], parts[4])
    return stats


register_section("access-files", FILES_COMMAND, parse_files)
register_section("access-accounts", ACCOUNTS_COMMAND, parse_accounts)
register_section("access-stat", STAT_COMMAND, parse_stat)


# ------------------------------------------------------------------- rules as expected values


class Rule:
    """An expected value that is a rule rather than one value.

    `expect.equal(observed, at_least(900), "unlock_time")` passes when the rule holds and records
    the rule's text ("900 or more") as the expected value, so the evidence reads naturally.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, text: str, holds: Callable[[Any], bool]) -> None:
        self.text = text
        self.holds = holds

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        try:
            return bool(self.holds(other))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def as_int(value: Any) -> int | None:
    """The integer a value starts with (`"14 (/etc/...)"` -> 14), or None."""
    match = re.match(r"\s*(-?\d+)", str(value)) if value is not None else None
    return int(match.group(1)) if match else None


def at_least(limit: int) -> Rule:
    return Rule(f"{limit} or more", lambda v: (n := as_int(v)) is not None and n >= limit)


def within(low: int, high: int) -> Rule:
    return Rule(f"{low} to {high}", lambda v: (n := as_int(v)) is not None and low <= n <= high)


def zero_or_at_least(limit: int) -> Rule:
    """For lock durations: 0 (until an administrator unlocks) or at least `limit`."""
    return Rule(
        f"0 (manual unlock) or {limit} or more",
        lambda v: (n := as_int(v)) is not None and (n == 0 or n >= limit),
    )


def only_from(allowed: Iterable[str]) -> Rule:
    """A comma-separated list whose every item is allowed (and which is not empty)."""
    allowed_set = list(allowed)

    def holds(value: Any) -> bool:
        items = [item for item in str(value).split(",") if item]
        return bool(items) and all(item in allowed_set for item in items)

    return Rule("only " + ",".join(allowed_set), holds)


def umask_at_least_as_strict(wanted: str) -> Rule:
    """A umask that masks at least the bits `wanted` masks (027 masks group w, other rwx)."""
    bits = int(wanted, 8)
    return Rule(
        f"{wanted} or stricter",
        lambda v: bool(re.fullmatch(r"0?[0-7]{3}", str(v))) and int(str(v), 8) & bits == bits,
    )


def mode_and_owner(max_mode: int, owners: Iterable[str]) -> Rule:
    """`owner:group mode` text: an allowed owner, and no permission bit beyond `max_mode`."""
    owner_list = list(owners)

    def holds(value: Any) -> bool:
        owner, _, mode = str(value).partition(" ")
        return owner in owner_list and int(mode, 8) & ~max_mode == 0

    return Rule(f"{' or '.join(owner_list)}, {max_mode:04o} or stricter", holds)


def absent_or(rule: Rule) -> Rule:
    """`rule`, or the thing is absent (recorded as the text "absent")."""
    return Rule(f"absent, or {rule.text}", lambda v: v == "absent" or rule == v)


def stat_text(stat: FileStat | None) -> str:
    """How a file's ownership and mode are recorded: `root:root 0600`, or `absent`."""
    return f"{stat.owner}:{stat.group} {stat.mode_text}" if stat else "absent"
