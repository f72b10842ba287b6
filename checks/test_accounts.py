"""Accounts, PAM and password policy: proven on the PAM stacks, login.defs and the account
databases of the host (password hashes never leave it: see
cityguard.verify.sections.access_accounts).

One check per PAM rule, per module option, per setting and per well-known system account.
"""

import pytest

from cityguard.verify.sections.access import LOGIN_DEFS, PAM_COMMON, PROFILE_DIR
from cityguard.verify.sections.access_login import (
    faillock_settings,
    login_defs,
    pam_rules,
    pam_stack,
    pwquality_settings,
    umask_lines,
    valid_shells,
)
from cityguard.verify.sections.access_rules import (
    Rule,
    at_least,
    umask_at_least_as_strict,
    within,
    zero_or_at_least,
)

AUTH, ACCOUNT, PASSWORD = (f"/etc/pam.d/common-{kind}" for kind in ("auth", "account", "password"))
PRESENT = Rule("present", lambda value: value != "absent")
ABSENT = Rule("absent", lambda value: value == "absent")


def case(value, control_id, case_id):
    return pytest.param(value, marks=pytest.mark.controls(control_id), id=case_id)


def _control(request):
    return request.node.get_closest_marker("controls").args[0]


def _files(facts):
    return facts.section("access-files")


def _accounts(facts):
    return facts.section("access-accounts")


def _names(names):
    return ",".join(sorted(names)) or "none"


NONE = Rule("none", lambda value: value == "none")


# ------------------------------------------------------------------------------ PAM stacks


# (file, module, argument the rule must carry, where it must sit relative to pam_unix)
PAM_RULES = [
    case((PASSWORD, "pam_pwquality.so", None, "before"), "CG-ACC-001", "pwquality"),
    case((AUTH, "pam_faillock.so", "preauth", "before"), "CG-ACC-002", "faillock-preauth"),
    case((AUTH, "pam_faillock.so", "authfail", "after"), "CG-ACC-002", "faillock-authfail"),
    case((ACCOUNT, "pam_faillock.so", None, None), "CG-ACC-002", "faillock-account"),
    case((PASSWORD, "pam_pwhistory.so", None, "before"), "CG-ACC-003", "pwhistory"),
]


@pytest.mark.parametrize("rule", PAM_RULES)
def test_pam_rule_in_stack(rule, facts, expect):
    path, module, argument, position = rule
    stack = pam_stack(_files(facts), path)
    unix = next((i for i, r in enumerate(stack) if r.module.endswith("pam_unix.so")), None)
    found = None
    for index, candidate in enumerate(stack):
        if not candidate.module.endswith(module) or (argument and not candidate.has(argument)):
            continue
        where = (
            ""
            if unix is None or position is None
            else (" (before pam_unix)" if index < unix else " (after pam_unix)")
        )
        found = candidate.text + where
        break
    wanted = f"a {module} rule" + (f" with {argument}" if argument else "")
    if position:
        wanted += f", {position} pam_unix"
        rule_holds = Rule(wanted, lambda v: f"({position} pam_unix)" in str(v))
    else:
        rule_holds = Rule(wanted, lambda v: v is not None)
    expect.equal(found, rule_holds, path)


def _option(facts, path, module, name):
    """The value of `name` on the first rule of `module` ("" for a bare flag), or None."""
    rules = pam_rules(_files(facts), path, module)
    if not rules:
        return None
    return rules[0].option(name)


def _flag_text(value):
    return "absent" if value is None else ("set" if value == "" else value)


# (file, module, option, rule kind, parameter): present, absent or at_least a parameter
PAM_OPTIONS = [
    case(
        (PASSWORD, "pam_unix.so", "use_authtok", "present", None), "CG-ACC-001", "unix-use_authtok"
    ),
    case(
        (PASSWORD, "pam_pwhistory.so", "remember", "at_least", "remember"),
        "CG-ACC-003",
        "pwhistory-remember",
    ),
    case(
        (PASSWORD, "pam_pwhistory.so", "enforce_for_root", "present", None),
        "CG-ACC-003",
        "pwhistory-enforce_for_root",
    ),
    case(
        (PASSWORD, "pam_pwhistory.so", "use_authtok", "present", None),
        "CG-ACC-003",
        "pwhistory-use_authtok",
    ),
    case((PASSWORD, "pam_unix.so", "remember", "absent", None), "CG-ACC-003", "unix-no-remember"),
]


@pytest.mark.parametrize("option", PAM_OPTIONS)
def test_pam_option(option, facts, expect, param, request):
    path, module, name, kind, parameter = option
    observed = _flag_text(_option(facts, path, module, name))
    label = f"{module} {name}"
    if kind == "present":
        expect.equal(observed, PRESENT, label)
    elif kind == "absent":
        expect.equal(observed, ABSENT, label)
    else:
        expect.equal(observed, at_least(int(param(_control(request), parameter))), label)


@pytest.mark.parametrize(
    "path", [case(path, "CG-ACC-004", path.rsplit("/", 1)[1]) for path in PAM_COMMON]
)
def test_pam_unix_refuses_empty_passwords(path, facts, expect):
    rules = pam_rules(_files(facts), path, "pam_unix.so")
    with_nullok = [r.text for r in rules if r.has("nullok") or r.has("nullok_secure")]
    observed = "; ".join(with_nullok) or ("no nullok" if rules else "no pam_unix rule")
    expect.equal(
        observed, Rule("no nullok", lambda v: v in ("no nullok", "no pam_unix rule")), path
    )


@pytest.mark.controls("CG-ACC-005")
def test_pam_unix_hashes_new_passwords_strongly(facts, expect, param):
    rules = pam_rules(_files(facts), PASSWORD, "pam_unix.so")
    methods = ("yescrypt", "gost_yescrypt", "sha512", "sha256", "blowfish", "bigcrypt", "md5")
    used = [arg for rule in rules for arg in rule.args if arg in methods]
    expect.equal(",".join(used) or None, param("CG-ACC-005", "algorithm"), "pam_unix password")


# --------------------------------------------------------------- password quality and lockout

# setting -> how its effective value is judged, from the control's `settings` parameter
PWQUALITY_LIBRARY_DEFAULTS = {
    "minlen": "8",
    "minclass": "0",
    "difok": "1",
    "maxrepeat": "0",
    "maxsequence": "0",
    "dictcheck": "1",
    "enforcing": "1",
}
PWQUALITY = [
    case(("minlen", "at_least"), "CG-ACC-001", "minlen"),
    case(("minclass", "at_least"), "CG-ACC-001", "minclass"),
    case(("difok", "at_least"), "CG-ACC-001", "difok"),
    case(("maxrepeat", "within"), "CG-ACC-001", "maxrepeat"),
    case(("maxsequence", "within"), "CG-ACC-001", "maxsequence"),
    case(("dictcheck", "equal"), "CG-ACC-001", "dictcheck"),
    case(("enforcing", "fixed:1"), "CG-ACC-001", "enforcing"),
    case(("enforce_for_root", "flag"), "CG-ACC-001", "enforce_for_root"),
]


@pytest.mark.parametrize("setting", PWQUALITY)
def test_pwquality_setting(setting, facts, expect, param):
    name, kind = setting
    effective = pwquality_settings(_files(facts))
    if name in effective:
        value, source = effective[name]
        observed = f"{'set' if value == '' else value} ({source})"
    elif name in PWQUALITY_LIBRARY_DEFAULTS:
        observed = f"{PWQUALITY_LIBRARY_DEFAULTS[name]} (libpwquality default)"
    else:
        observed = "absent"
    if kind == "flag":
        expect.equal(observed, PRESENT, name)
        return
    if kind.startswith("fixed:"):
        wanted = kind.removeprefix("fixed:")
        expect.equal(observed, Rule(wanted, lambda v: str(v).split(" ")[0] == wanted), name)
        return
    limit = int(param("CG-ACC-001", "settings")[name])
    rule = {
        "at_least": at_least(limit),
        "within": within(1, limit),
        "equal": Rule(str(limit), lambda v: str(v).split(" ")[0] == str(limit)),
    }[kind]
    expect.equal(observed, rule, name)


@pytest.mark.parametrize(
    "name", [case("deny", "CG-ACC-002", "deny"), case("unlock_time", "CG-ACC-002", "unlock_time")]
)
def test_faillock_setting(name, facts, expect, param):
    defaults = {"deny": "3", "unlock_time": "600"}  # pam_faillock's own, when nothing is set
    effective = faillock_settings(_files(facts))
    value, source = effective.get(name, (defaults[name], "pam_faillock default"))
    limit = int(param("CG-ACC-002", name))
    rule = within(1, limit) if name == "deny" else zero_or_at_least(limit)
    expect.equal(f"{value} ({source})", rule, name)


# -------------------------------------------------------------------------------- login.defs

# key -> (control, rule kind, parameter)
LOGIN_DEFS_KEYS = [
    case(("ENCRYPT_METHOD", "upper", "algorithm"), "CG-ACC-005", "ENCRYPT_METHOD"),
    case(("PASS_MAX_DAYS", "max", "max_days"), "CG-ACC-006", "PASS_MAX_DAYS"),
    case(("PASS_MIN_DAYS", "min", "min_days"), "CG-ACC-006", "PASS_MIN_DAYS"),
    case(("PASS_WARN_AGE", "min", "warn_days"), "CG-ACC-006", "PASS_WARN_AGE"),
    case(("UMASK", "umask", "umask"), "CG-ACC-010", "UMASK"),
]


@pytest.mark.parametrize("key", LOGIN_DEFS_KEYS)
def test_login_defs(key, facts, expect, param, request):
    name, kind, parameter = key
    observed = login_defs(_files(facts)).get(name)
    wanted = str(param(_control(request), parameter))
    if kind == "upper":
        rule = Rule(wanted.upper(), lambda v: str(v) == wanted.upper())
    elif kind == "max":
        rule = within(1, int(wanted))
    elif kind == "min":
        rule = at_least(int(wanted))
    else:
        rule = umask_at_least_as_strict(wanted)
    expect.equal(observed, rule, f"{LOGIN_DEFS} {name}")


@pytest.mark.controls("CG-ACC-006")
def test_new_accounts_lock_after_inactivity(facts, expect, param):
    inactive = _accounts(facts).useradd_defaults.get("INACTIVE")
    expect.equal(inactive, within(0, int(param("CG-ACC-006", "inactive_days"))), "useradd INACTIVE")


# shadow field -> parameter that bounds it, and whether it is an upper or lower bound
AGING_FIELDS = [
    case(("max_days", "max_days", "max"), "CG-ACC-006", "max_days"),
    case(("min_days", "min_days", "min"), "CG-ACC-006", "min_days"),
    case(("warn_days", "warn_days", "min"), "CG-ACC-006", "warn_days"),
    case(("inactive_days", "inactive_days", "inactive"), "CG-ACC-006", "inactive_days"),
]


@pytest.mark.parametrize("aging", AGING_FIELDS)
def test_password_aging_of_accounts_with_a_password(aging, facts, expect, param):
    field, parameter, kind = aging
    limit = int(param("CG-ACC-006", parameter))
    accounts = [e for e in _accounts(facts).shadow.values() if e.has_password]
    if not accounts:
        expect.equal(
            "no account has a password",
            Rule("every account with a password in line", lambda v: True),
            field,
        )
        return
    rule = {"max": within(1, limit), "min": at_least(limit), "inactive": within(0, limit)}[kind]
    for entry in sorted(accounts, key=lambda e: e.name):
        expect.equal(getattr(entry, field) or None, rule, entry.name)


# ---------------------------------------------------------------------------- account hygiene


@pytest.mark.controls("CG-ACC-004")
def test_no_account_has_an_empty_password(facts, expect):
    empty = [e.name for e in _accounts(facts).shadow.values() if e.password == "empty"]
    expect.equal(_names(empty), NONE, "accounts with an empty password field")


@pytest.mark.controls("CG-ACC-004")
def test_passwords_are_shadowed(facts, expect):
    unshadowed = [e.name for e in _accounts(facts).passwd.values() if e.password != "x"]
    expect.equal(_names(unshadowed), NONE, "accounts whose password is in /etc/passwd")


@pytest.mark.controls("CG-ACC-007")
def test_only_root_has_uid_0(facts, expect):
    names = [e.name for e in _accounts(facts).passwd.values() if e.uid == 0]
    expect.equal(_names(names), "root", "accounts with UID 0")


@pytest.mark.controls("CG-ACC-007")
def test_root_primary_group_is_gid_0(facts, expect):
    root = _accounts(facts).passwd.get("root")
    expect.equal(root.gid if root else None, 0, "root's primary GID")


@pytest.mark.controls("CG-ACC-007")
def test_only_group_root_has_gid_0(facts, expect):
    expect.equal(_names(_accounts(facts).gid0_groups), "root", "groups with GID 0")


@pytest.mark.controls("CG-ACC-008")
def test_root_password_is_set_or_locked(facts, expect):
    root = _accounts(facts).shadow.get("root")
    observed = (
        None
        if root is None
        else (
            "locked"
            if root.password == "locked"
            else "password set"
            if root.has_password
            else root.password
        )
    )
    expect.one_of(observed, ["password set", "locked"], "root")


# Accounts every Debian and Ubuntu system has (base-passwd, apt); sync's shell is /bin/sync
BASE_SYSTEM_ACCOUNTS = (
    "daemon",
    "bin",
    "sys",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "_apt",
    "nobody",
)


def _login_shell_rule(name, files, exempt):
    if name in exempt:
        return Rule("any shell (exempted by the parameter)", lambda shell: True)
    shells = valid_shells(files)
    return Rule(
        "no login shell (absent from /etc/shells, e.g. nologin)",
        lambda shell: shell == "absent" or shell not in shells,
    )


@pytest.mark.parametrize("name", [case(name, "CG-ACC-009", name) for name in BASE_SYSTEM_ACCOUNTS])
def test_system_account_has_no_login_shell(name, facts, expect, param):
    entry = _accounts(facts).passwd.get(name)
    exempt = param("CG-ACC-009", "exempt_accounts")
    observed = entry.shell if entry else "absent"
    expect.equal(observed, _login_shell_rule(name, _files(facts), exempt), name)


@pytest.mark.controls("CG-ACC-009")
def test_other_system_accounts_have_no_login_shell(facts, expect, param):
    files, accounts = _files(facts), _accounts(facts)
    uid_min = int(login_defs(files).get("UID_MIN", "1000"))
    exempt = param("CG-ACC-009", "exempt_accounts")
    shells = valid_shells(files)
    others = [
        e
        for e in accounts.system_accounts(uid_min)
        if e.name not in BASE_SYSTEM_ACCOUNTS and e.name not in ("sync", "shutdown", "halt")
    ]
    with_shell = [
        f"{e.name}:{e.shell}" for e in others if e.shell in shells and e.name not in exempt
    ]
    expect.equal(
        _names(with_shell), NONE, f"other system accounts (UID < {uid_min}) with a login shell"
    )


@pytest.mark.controls("CG-ACC-009")
def test_accounts_without_login_shell_are_locked(facts, expect):
    files, accounts = _files(facts), _accounts(facts)
    shells = valid_shells(files)
    unlocked = [
        name
        for name, entry in accounts.passwd.items()
        if name != "root"
        and entry.shell not in shells
        and (shadow := accounts.shadow.get(name)) is not None
        and shadow.password not in ("locked",)
    ]
    expect.equal(_names(unlocked), NONE, "accounts without a login shell that are not locked")


# ------------------------------------------------------------------------------------- umask


@pytest.mark.controls("CG-ACC-010")
def test_login_shells_get_the_umask(facts, expect, param):
    wanted = str(param("CG-ACC-010", "umask"))
    found = [
        value for path, value in umask_lines(_files(facts)) if path.startswith(PROFILE_DIR + "/")
    ]
    expect.equal(
        found[-1] if found else None,
        umask_at_least_as_strict(wanted),
        f"umask set in {PROFILE_DIR}",
    )


@pytest.mark.controls("CG-ACC-010")
def test_no_start_up_file_sets_a_weaker_umask(facts, expect, param):
    rule = umask_at_least_as_strict(str(param("CG-ACC-010", "umask")))
    weaker = [
        f"{path}: umask {value}" for path, value in umask_lines(_files(facts)) if rule != value
    ]
    expect.equal("; ".join(weaker) or "none", NONE, "start-up files with a weaker umask")


@pytest.mark.controls("CG-ACC-010")
def test_non_login_ssh_session_gets_the_umask(facts, expect, param):
    """What `ssh host cmd` (and sftp, scp, Ansible) really starts with: pam_umask's value,
    read from the session's first process; /etc/profile.d never runs there."""
    session = facts.section("access-session")
    expect.equal(
        session.short_umask,
        umask_at_least_as_strict(str(param("CG-ACC-010", "umask"))),
        f"umask of a non-login SSH session ({session.process or 'unknown process'})",
    )
