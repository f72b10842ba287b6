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
    """The values the control wants, as text: sysctl reports every value as text."""
    return {key: str(value) for key, value in param(control_id, "settings").items()}


def _runtime(facts, keys):
    return {key: facts.sysctl_runtime.get(key) for key in keys}


def _persisted(facts, keys):
    return {key: facts.sysctl_persisted.get(key, (None,))[0] for key in keys}


@pytest.mark.parametrize("control_id", NETWORK_CONTROLS)
def test_network_settings_active(control_id, facts, expect, param):
    wanted = _settings(param, control_id)
    expect.each_equal(_runtime(facts, wanted), wanted)


@pytest.mark.parametrize("control_id", NETWORK_CONTROLS)
def test_network_settings_persisted(control_id, facts, expect, param):
    wanted = _settings(param, control_id)
    expect.each_equal(_persisted(facts, wanted), wanted)


@pytest.mark.parametrize("control_id", KERNEL_CONTROLS)
def test_kernel_settings_active(control_id, facts, expect, param):
    if facts.container:
        expect.not_applicable(
            f"kernel.* sysctls are global: a {facts.container} container sees the machine's "
            "values and cannot set them; the persisted value is checked instead"
        )
    wanted = _settings(param, control_id)
    expect.each_equal(_runtime(facts, wanted), wanted)


@pytest.mark.parametrize("control_id", KERNEL_CONTROLS)
def test_kernel_settings_persisted(control_id, facts, expect, param):
    wanted = _settings(param, control_id)
    expect.each_equal(_persisted(facts, wanted), wanted)
