"""The account databases (passwd, shadow, group) as the `access-accounts` fact section: its own
module because it is the one section that reduces sensitive files on the host before they
travel. Password hashes never leave the host: a shadow password field travels only as its kind
(`empty`, `locked`, `hash:<scheme id>` or `other`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cityguard.verify.facts import register_section

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


register_section("access-accounts", ACCOUNTS_COMMAND, parse_accounts)
