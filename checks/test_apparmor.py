"""AppArmor: installed, on from boot, every profile loaded, enforcing where level 2 asks.

A container boots no kernel of its own and cannot load profiles: there the kernel command line
and the loaded profiles are not-applicable; packages, service and profile directories are
proven.
"""

from collections import Counter

import pytest

from cityguard.verify.sections.catalog import holds
from cityguard.verify.sections.services import package, unit

NO_KERNEL = (
    "a {} container boots no kernel of its own: there is no bootloader entry or "
    "kernel command line to set"
)
NO_PROFILES = (
    "a {} container cannot load AppArmor profiles (the kernel's AppArmor belongs to "
    "the machine): the packages, the service and the profile directories are checked"
)
PACKAGES = ("apparmor", "apparmor-utils")
BOOT_PARAMETERS = ("apparmor=1", "security=apparmor")


def per_item(names, control_id):
    return [pytest.param(n, marks=pytest.mark.controls(control_id), id=n) for n in names]


@pytest.mark.parametrize("name", per_item(PACKAGES, "CG-AA-001"))
def test_apparmor_package_installed(name, facts, expect):
    found = package(facts.section("system-packages"), name)
    expect.equal(found.state, "installed", found.label)


@pytest.mark.controls("CG-AA-001")
def test_apparmor_service_enabled(facts, expect):
    """apparmor.service loads the profiles at boot."""
    expect.equal(
        unit(facts.section("system-units"), "apparmor.service").file_state,
        "enabled",
        "apparmor.service",
    )


@pytest.mark.parametrize("parameter", per_item(BOOT_PARAMETERS, "CG-AA-001"))
def test_apparmor_boot_parameter(parameter, facts, expect):
    """On every kernel entry of grub.cfg."""
    if facts.container:
        expect.not_applicable(NO_KERNEL.format(facts.container))
    boot = facts.section("system-boot")
    name = parameter.partition("=")[0]
    values = sorted(
        {
            next((p for p in reversed(entry) if p.startswith(f"{name}=")), "(missing)")
            for entry in boot.kernel_lines
        }
    )
    observed = ", ".join(values) or "(no kernel entry in /boot/grub/grub.cfg)"
    holds(expect, values == [parameter], observed, parameter, f"{name}= in grub.cfg")


@pytest.mark.controls("CG-AA-001")
def test_apparmor_active_in_kernel(facts, expect):
    if facts.container:
        expect.not_applicable(NO_PROFILES.format(facts.container))
    expect.equal(
        facts.section("system-apparmor").enabled, "Y", "/sys/module/apparmor/parameters/enabled"
    )


@pytest.mark.controls("CG-AA-002")
def test_no_profile_disabled(facts, expect):
    disabled = facts.section("system-apparmor-files").get("disable", [])
    expect.equal(", ".join(disabled) or "none", "none", "profiles in /etc/apparmor.d/disable")


def _modes(facts):
    profiles = facts.section("system-apparmor").profiles
    counts = Counter(profiles.values())
    return profiles, ", ".join(f"{n} {mode}" for mode, n in sorted(counts.items())) or "none"


@pytest.mark.controls("CG-AA-002")
def test_profiles_enforce_or_complain(facts, expect):
    if facts.container:
        expect.not_applicable(NO_PROFILES.format(facts.container))
    profiles, summary = _modes(facts)
    others = [
        f"{name} ({mode})" for name, mode in profiles.items() if mode not in ("enforce", "complain")
    ]
    holds(
        expect,
        bool(profiles) and not others,
        "; ".join([summary, *others]),
        "profiles loaded, each in enforce or complain mode",
        "loaded profiles",
    )


@pytest.mark.controls("CG-AA-002")
def test_no_unconfined_process_with_profile(facts, expect):
    if facts.container:
        expect.not_applicable(NO_PROFILES.format(facts.container))
    unconfined = facts.section("system-apparmor").unconfined_processes
    expect.equal(
        ", ".join(unconfined) or "none", "none", "processes unconfined although a profile exists"
    )


@pytest.mark.controls("CG-AA-003")
def test_no_profile_forced_to_complain(facts, expect):
    forced = facts.section("system-apparmor-files").get("force-complain", [])
    expect.equal(", ".join(forced) or "none", "none", "profiles in /etc/apparmor.d/force-complain")


@pytest.mark.controls("CG-AA-003")
def test_profiles_enforcing(facts, expect):
    if facts.container:
        expect.not_applicable(NO_PROFILES.format(facts.container))
    profiles, summary = _modes(facts)
    others = [f"{name} ({mode})" for name, mode in profiles.items() if mode != "enforce"]
    holds(
        expect,
        bool(profiles) and not others,
        "; ".join([summary, *others[:20]]),
        "every loaded profile in enforce mode",
        "loaded profiles",
    )
