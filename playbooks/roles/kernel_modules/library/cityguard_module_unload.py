#!/usr/bin/python
"""Ansible module: unload kernel modules that are loaded but unused, with check-mode support.

A module in use (reference count above zero, e.g. a mounted squashfs or a plugged USB disk) is
left loaded and reported: unloading it would break what uses it. It stays unloadable after the
next boot, and `cityguard check` reports it as loaded until then. Inside a container the kernel
is the machine's, not the host's: nothing is done and the module reports itself skipped.
"""

from __future__ import annotations


from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cityguard_host import in_container

DOCUMENTATION = r"""
module: cityguard_module_unload
short_description: Unload kernel modules that are loaded but unused
options:
  modules:
    description: module names (- and _ are the same)
    type: list
    elements: str
    required: true
"""




def loaded_modules() -> dict[str, int]:
    """Module name -> reference count; empty when the kernel has no loadable modules."""
    try:
        with open("/proc/modules") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return {}
    loaded = {}
    for line in lines:
        words = line.split()
        if len(words) >= 3:
            loaded[words[0]] = int(words[2]) if words[2].isdigit() else 0
    return loaded


def main() -> None:
    module = AnsibleModule(
        argument_spec={"modules": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    if in_container():
        module.exit_json(changed=False, skipped=True,
                         msg="container: the kernel and its modules are the machine's")
    loaded = loaded_modules()
    unloaded, in_use = [], []
    for name in sorted({m.replace("-", "_") for m in module.params["modules"]}):
        if name not in loaded:
            continue
        if loaded[name] > 0:
            in_use.append(name)
            continue
        unloaded.append(name)
        if not module.check_mode:
            rc, _, err = module.run_command(["modprobe", "-r", name])
            if rc != 0:
                module.fail_json(msg=f"modprobe -r {name} failed: {err.strip()}")
    for name in in_use:
        module.warn(f"kernel module {name} is in use and stays loaded until the next reboot")
    module.exit_json(changed=bool(unloaded), unloaded=unloaded, in_use=in_use,
                     diff={"before": "".join(f"{n} loaded\n" for n in unloaded),
                           "after": "".join(f"{n} unloaded\n" for n in unloaded),
                           "before_header": "lsmod", "after_header": "lsmod"})


if __name__ == "__main__":
    main()
