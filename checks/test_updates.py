"""Automatic security updates: unattended-upgrades, its daily schedule, and the security suite.

A lab container has no route to a package mirror, so there whether updates really ran is
not-applicable; the configuration (apt-config's effective values) is proven everywhere.
"""

import pytest

from cityguard.verify.sections.catalog import holds
from cityguard.verify.sections.services import package, unit

PERIODIC = ("Update-Package-Lists", "Unattended-Upgrade")
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")
STAMPS = {
    "package lists refreshed": "/var/lib/apt/periodic/update-success-stamp",
    "unattended-upgrade ran": "/var/lib/apt/periodic/unattended-upgrades-stamp",
}
NO_MIRROR = (
    "a {} lab container has no route to a package mirror, so updates cannot be "
    "fetched there; the configuration is checked instead"
)


def per_item(names):
    return [pytest.param(n, marks=pytest.mark.controls("CG-UPD-001"), id=n) for n in names]


@pytest.mark.controls("CG-UPD-001")
def test_unattended_upgrades_installed(facts, expect):
    found = package(facts.section("system-packages"), "unattended-upgrades")
    expect.equal(found.state, "installed", found.label)


@pytest.mark.parametrize("name", per_item(PERIODIC))
def test_apt_periodic(name, facts, expect, param):
    """Runs every N days, N at least 1 and at most max_age_days (0 or unset: never)."""
    value = facts.section("system-apt").value(f"APT::Periodic::{name}")
    limit = int(param("CG-UPD-001", "max_age_days"))
    ok = (value or "").isdigit() and 1 <= int(value) <= limit
    holds(expect, ok, value, f"every 1 to {limit} days", f"APT::Periodic::{name}")


@pytest.mark.controls("CG-UPD-001")
def test_security_updates_allowed(facts, expect):
    """Debian names the suite in Origins-Pattern, Ubuntu in Allowed-Origins."""
    apt = facts.section("system-apt")
    origins = apt.config.get("Unattended-Upgrade::Origins-Pattern", []) + apt.config.get(
        "Unattended-Upgrade::Allowed-Origins", []
    )
    security = [o for o in origins if "security" in o.lower()]
    holds(
        expect,
        bool(security),
        "; ".join(security) or "none",
        "an origin of the security suite",
        "unattended-upgrade origins",
    )


@pytest.mark.controls("CG-UPD-001")
def test_security_suite_in_sources(facts, expect):
    """Unattended-upgrades installs only what APT can fetch: the security suite must be a source."""
    suites = sorted(set(facts.section("system-apt").suites))
    security = [s for s in suites if s.endswith("-security") or s.endswith("/updates")]
    holds(
        expect,
        bool(security),
        ", ".join(suites) or "none",
        "the distribution's security suite (<codename>-security)",
        "suites of APT's sources",
    )


@pytest.mark.parametrize("name", per_item(TIMERS))
def test_apt_timer_enabled(name, facts, expect):
    expect.equal(unit(facts.section("system-units"), name).file_state, "enabled", name)


@pytest.mark.controls("CG-UPD-001")
def test_updates_ran_recently(facts, expect, param):
    if facts.container:
        expect.not_applicable(NO_MIRROR.format(facts.container))
    apt = facts.section("system-apt")
    limit = float(param("CG-UPD-001", "max_age_days"))
    ages = {label: apt.age_days(path) for label, path in STAMPS.items()}
    observed = "; ".join(
        f"{label} {'never' if age is None else f'{age} days ago'}" for label, age in ages.items()
    )
    ok = all(age is not None and age <= limit for age in ages.values())
    holds(expect, ok, observed, f"both within {limit:g} days", "last successful run")
