"""Kernel and network parameters: the value in force now, and the value the host boots with.

One check per key, each keeping its own observed value. net.* keys belong to the host's network
namespace, so both are checked everywhere. kernel.*, fs.* and vm.* keys are global: a lab
container sees the machine's values and cannot set them, so there the runtime check is
not-applicable and the persisted value (the files systemd-sysctl reads) is what is proven; the
same holds for the few net.core keys that exist only in the machine's initial namespace.
"""

import pytest

from cityguard.verify.sections.kernel import (
    catalog_parameters,
    expect_sysctl_persisted,
    expect_sysctl_runtime,
    inventory_names,
    sysctl_persisted,
)

CONTROLS = catalog_parameters(__file__, "sysctl.yml")
FORWARDING, ROUTER_ADVERTISEMENTS = "CG-NET-010", "CG-NET-011"


def per_key(control_ids, *parameter_names):
    """One case per (control, key) of the controls' default parameters, marked with the control."""
    cases = []
    for control_id in control_ids:
        keys = sorted({k for name in parameter_names for k in CONTROLS[control_id].get(name, {})})
        cases += [
            pytest.param(
                control_id, key, marks=pytest.mark.controls(control_id), id=f"{control_id}:{key}"
            )
            for key in keys
        ]
    return cases


NETWORK = per_key(
    [
        c
        for c in CONTROLS
        if c.startswith("CG-NET-") and c not in (FORWARDING, ROUTER_ADVERTISEMENTS)
    ],
    "settings",
)
KERNEL = per_key([c for c in CONTROLS if c.startswith("CG-KRN-")], "settings")


@pytest.fixture(scope="module")
def host_names(request):
    """The host's inventory groups, its name and 'all': what router and SLAAC lists name."""
    return inventory_names(request.config.getoption("hosts"))


@pytest.mark.parametrize(("control_id", "key"), NETWORK)
def test_network_setting_active(control_id, key, facts, expect, param):
    expect_sysctl_runtime(facts, expect, key, str(param(control_id, "settings")[key]))


@pytest.mark.parametrize(("control_id", "key"), NETWORK)
def test_network_setting_persisted(control_id, key, facts, expect, param):
    expect_sysctl_persisted(facts, expect, key, str(param(control_id, "settings")[key]))


@pytest.mark.parametrize(("control_id", "key"), KERNEL)
def test_kernel_setting_active(control_id, key, facts, expect, param):
    expect_sysctl_runtime(facts, expect, key, str(param(control_id, "settings")[key]))


@pytest.mark.parametrize(("control_id", "key"), KERNEL)
def test_kernel_setting_persisted(control_id, key, facts, expect, param):
    expect_sysctl_persisted(facts, expect, key, str(param(control_id, "settings")[key]))


def forwarding_wanted(control_id, key, param, host_names):
    """Routers (router_groups) get router_settings, every other host settings: as the role."""
    routers = set(param(control_id, "router_groups")) & host_names
    name = "router_settings" if routers else "settings"
    return str(param(control_id, name)[key]), f"{key} ({'router' if routers else 'not a router'})"


@pytest.mark.parametrize(
    ("control_id", "key"), per_key([FORWARDING], "settings", "router_settings")
)
def test_forwarding_active(control_id, key, facts, expect, param, host_names):
    wanted, label = forwarding_wanted(control_id, key, param, host_names)
    expect.equal(facts.sysctl_runtime.get(key), wanted, label)


@pytest.mark.parametrize(
    ("control_id", "key"), per_key([FORWARDING], "settings", "router_settings")
)
def test_forwarding_persisted(control_id, key, facts, expect, param, host_names):
    wanted, label = forwarding_wanted(control_id, key, param, host_names)
    value, source = sysctl_persisted(facts, key)
    expect.equal(value, wanted, f"{label} in {source}")


def uses_slaac(control_id, param, host_names):
    return bool(set(param(control_id, "hosts_using_slaac")) & host_names)


# On a SLAAC host the control is inverted, never skipped: the kernel must keep accepting router
# advertisements (1, or 2 on a forwarding host), so hardening can never cut off its IPv6. The
# role writes the control's slaac_settings there (1, the kernel default).
@pytest.mark.parametrize(("control_id", "key"), per_key([ROUTER_ADVERTISEMENTS], "settings"))
def test_router_advertisements_active(control_id, key, facts, expect, param, host_names):
    value = facts.sysctl_runtime.get(key)
    if uses_slaac(control_id, param, host_names):
        expect.one_of(value, ["1", "2"], f"{key} (host uses SLAAC)")
    else:
        expect.equal(value, str(param(control_id, "settings")[key]), key)


@pytest.mark.parametrize(("control_id", "key"), per_key([ROUTER_ADVERTISEMENTS], "settings"))
def test_router_advertisements_persisted(control_id, key, facts, expect, param, host_names):
    value, source = sysctl_persisted(facts, key)
    if uses_slaac(control_id, param, host_names):
        observed = value if value is not None else "not set (kernel default)"
        label = f"{key} in {source}" if value is not None else key
        expect.one_of(
            observed, ["not set (kernel default)", "1", "2"], f"{label} (host uses SLAAC)"
        )
    else:
        expect.equal(value, str(param(control_id, "settings")[key]), f"{key} in {source}")
