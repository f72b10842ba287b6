"""Time synchronisation: chrony alone, with the authorised sources, unprivileged and running.

A container cannot set the clock (chronyd lacks CAP_SYS_TIME and systemd skips its unit), so
there the running daemon is not-applicable and its configuration is what is proven.
"""

import pytest

from cityguard.verify.sections.services import package, unit

NO_CLOCK = (
    "a {} container cannot set the clock (chronyd lacks CAP_SYS_TIME, systemd skips "
    "chrony.service there); the configuration is checked instead"
)
# other time daemons and the units that would run them
OTHER_DAEMONS = {
    "systemd-timesyncd": ["systemd-timesyncd.service"],
    "ntp": ["ntp.service"],
    "ntpsec": ["ntpsec.service"],
    "openntpd": ["openntpd.service"],
}
CHRONY_UNIT = "chrony.service"


@pytest.mark.controls("CG-TIME-001")
def test_chrony_installed(facts, expect):
    chrony = package(facts.section("system-packages"), "chrony")
    expect.equal(chrony.state, "installed", chrony.label)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.controls("CG-TIME-001"), id=n) for n in OTHER_DAEMONS],
)
def test_other_time_daemon_not_in_use(name, facts, expect):
    """Not installed, or at least neither enabled nor running."""
    pkg = package(facts.section("system-packages"), name)
    units = [unit(facts.section("system-units"), u) for u in OTHER_DAEMONS[name]]
    in_use = pkg.installed and any(
        u.file_state in ("enabled", "enabled-runtime") or u.active == "active" for u in units
    )
    observed = pkg.describe() + "".join(f"; {u.describe()}" for u in units if pkg.installed)
    expect.equal(observed if in_use else "not in use", "not in use", observed)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.controls("CG-TIME-001"), id=n) for n in OTHER_DAEMONS],
)
def test_other_time_daemon_purged(name, facts, expect):
    """Removed is not enough: a package whose configuration files remain (systemd-timesyncd
    replaced by chrony) keeps its enable links, and scanners read it as still there."""
    pkg = package(facts.section("system-packages"), name)
    expect.one_of(pkg.state, ["not installed"], name)


def _sources(facts):
    return facts.section("system-chrony").sources


def _authorised(param):
    return [("server", s) for s in param("CG-TIME-002", "servers")] + [
        ("pool", p) for p in param("CG-TIME-002", "pools")
    ]


@pytest.mark.controls("CG-TIME-002")
def test_chrony_uses_authorised_sources(facts, expect, param):
    configured = {(directive, address) for directive, address, _ in _sources(facts)}
    expect.each_equal(
        {f"{d} {a}": "configured" if (d, a) in configured else None for d, a in _authorised(param)},
        {f"{d} {a}": "configured" for d, a in _authorised(param)},
    )


@pytest.mark.controls("CG-TIME-002")
def test_chrony_has_no_other_sources(facts, expect, param):
    authorised = set(_authorised(param))
    others = [f"{d} {a} ({f})" for d, a, f in _sources(facts) if (d, a) not in authorised]
    expect.equal(", ".join(others) or "none", "none", "other time sources")


@pytest.mark.controls("CG-TIME-003")
def test_chrony_user_configured(facts, expect):
    """chronyd drops root for _chrony unless told otherwise (`user`, or -u in DAEMON_OPTS)."""
    config = facts.section("system-chrony")
    users = [u for u, _ in config.users]
    options = (config.daemon_opts or "").split()
    if "-u" in options[:-1]:
        users.append(options[options.index("-u") + 1])
    # chronyd uses the last user it is given
    observed = users[-1] if users else "_chrony (built-in default)"
    expect.one_of(observed, ["_chrony", "_chrony (built-in default)"], "chronyd user")


@pytest.mark.controls("CG-TIME-003")
def test_chrony_enabled(facts, expect):
    state = unit(facts.section("system-units"), CHRONY_UNIT)
    expect.equal(state.file_state, "enabled", CHRONY_UNIT)


@pytest.mark.controls("CG-TIME-003")
def test_chrony_running(facts, expect):
    if facts.container:
        expect.not_applicable(NO_CLOCK.format(facts.container))
    expect.equal(unit(facts.section("system-units"), CHRONY_UNIT).active, "active", CHRONY_UNIT)


@pytest.mark.controls("CG-TIME-003")
def test_chronyd_process_user(facts, expect):
    if facts.container:
        expect.not_applicable(NO_CLOCK.format(facts.container))
    users = sorted(
        {user for user, command in facts.section("system-processes") if command == "chronyd"}
    )
    expect.equal(", ".join(users) or "(no chronyd process)", "_chrony", "chronyd runs as")
