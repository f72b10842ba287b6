"""Kernel modules no municipal server needs: not loadable, blacklisted, and not loaded now.

The configuration is what modprobe itself resolves from every modprobe.d directory
(`modprobe --showconfig`), so a file elsewhere that overrides cityguard's shows up here. Whether
a module is loaded is the kernel's state: a lab container shares the machine's kernel, so there
that check is not-applicable and the configuration is what is proven.
"""

import pytest

from cityguard.verify.sections.kernel import catalog_parameters

CONTROLS = catalog_parameters(__file__, "kernel_modules.yml")
# what CIS accepts as "this module cannot be loaded": the install command fails or does nothing
DISABLED_COMMANDS = ["/bin/false", "/usr/bin/false", "/bin/true", "/usr/bin/true"]

MODULES = [
    pytest.param(
        control_id, module, marks=pytest.mark.controls(control_id), id=f"{control_id}:{module}"
    )
    for control_id, parameters in CONTROLS.items()
    for module in parameters["modules"]
]


@pytest.mark.parametrize(("control_id", "module"), MODULES)
def test_module_not_loadable(control_id, module, facts, expect):
    config = facts.section("kernel-modprobe")
    expect.one_of(config.install_command(module), DISABLED_COMMANDS, f"install {module}")


@pytest.mark.parametrize(("control_id", "module"), MODULES)
def test_module_blacklisted(control_id, module, facts, expect):
    config = facts.section("kernel-modprobe")
    observed = f"blacklist {module}" if config.blacklisted(module) else None
    expect.equal(observed, f"blacklist {module}", "modprobe configuration")


@pytest.mark.parametrize(("control_id", "module"), MODULES)
def test_module_not_loaded(control_id, module, facts, expect):
    if facts.container:
        expect.not_applicable(
            f"a {facts.container} container shares the machine's kernel: its loaded modules are "
            "the machine's, which the host can neither see fully nor unload; the modprobe "
            "configuration is checked instead"
        )
    loaded = facts.section("kernel-loaded-modules")
    name = module.replace("-", "_")
    if loaded is None:
        observed = "not loaded (kernel without loadable module support)"
    elif name in loaded:
        observed = f"loaded (used by {loaded[name]})"
    else:
        observed = "not loaded"
    expect.one_of(
        observed, ["not loaded", "not loaded (kernel without loadable module support)"], module
    )
