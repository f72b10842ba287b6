"""Kernel parameters: the value in force now, and the value the host will boot with.

net.* keys belong to the host's network namespace, so both are checked everywhere. kernel.*,
fs.* and vm.* keys are global: a lab container sees the machine's values and cannot set them,
so there the runtime check is not-applicable and the persisted file is what is proven.
"""

import pytest



def per_control(*control_ids):
    """One test case per control, each marked with the control it proves."""
    return [pytest.param(c, marks=pytest.mark.controls(c), id=c) for c in control_ids]


NETWORK_CONTROLS = per_control("CG-NET-001", "CG-NET-002")
KERNEL_CONTROLS = per_control("CG-KRN-001")


def _settings(param, control_id):
    return param(control_id, "settings")


@pytest.mark.parametrize("control_id", NETWORK_CONTROLS)
def test_network_settings_active(control_id, facts, expect, param):
    for key, wanted in _settings(param, control_id).items():
        expect.equal(facts.sysctl_runtime.get(key), str(wanted), key)


@pytest.mark.parametrize("control_id", NETWORK_CONTROLS)
def test_network_settings_persisted(control_id, facts, expect, param):
    for key, wanted in _settings(param, control_id).items():
        expect.equal(facts.sysctl_persisted.get(key, (None,))[0], str(wanted), key)


@pytest.mark.parametrize("control_id", KERNEL_CONTROLS)
def test_kernel_settings_active(control_id, facts, expect, param):
    if facts.container:
        expect.not_applicable(
            f"kernel.* sysctls are global: a {facts.container} container sees the machine's "
            "values and cannot set them; the persisted value is checked instead"
        )
    for key, wanted in _settings(param, control_id).items():
        expect.equal(facts.sysctl_runtime.get(key), str(wanted), key)


@pytest.mark.parametrize("control_id", KERNEL_CONTROLS)
def test_kernel_settings_persisted(control_id, facts, expect, param):
    for key, wanted in _settings(param, control_id).items():
        expect.equal(facts.sysctl_persisted.get(key, (None,))[0], str(wanted), key)
