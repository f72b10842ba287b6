#!/usr/bin/python
"""Ansible module: bring several systemd units to their wanted state in one run.

`ansible.builtin.systemd_service` costs a round trip per unit even when the unit is already as
wanted; an area often has a few (a daemon, its timers). This module asks systemd about all of
them at once and acts only on those that differ, so every run still repairs drift.

Each unit may name the `control` it serves; the result lists the controls whose units changed
(`cityguard_changed_controls`), so changes are reported against the right control.
"""

from __future__ import annotations

import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_units
short_description: Enable, start, stop or mask several systemd units in one module run
options:
  units:
    description: >-
      Each with name (or names), and any of enabled (bool), state (started or stopped),
      masked (bool), control (for reporting). A unit that does not exist fails the task
      unless optional.
    type: list
    elements: dict
    required: true
  daemon_reload:
    description: Reload systemd's unit files first (after a package brought new units).
    type: bool
    default: false
"""

UNIT_SPEC = {
    "name": {"type": "str"},
    "names": {"type": "list", "elements": "str"},  # several units wanted in the same state
    "enabled": {"type": "bool"},
    "state": {"type": "str", "choices": ["started", "stopped"]},
    "masked": {"type": "bool"},
    "control": {"type": "str"},
    "optional": {"type": "bool", "default": False},
}


def systemctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)


def current(module: AnsibleModule, names: list[str]) -> dict[str, dict[str, str]]:
    """UnitFileState and ActiveState of every unit, from one `systemctl show`."""
    shown = systemctl("show", "--property=Id,LoadState,UnitFileState,ActiveState", "--",
                      *names)
    if shown.returncode != 0:
        module.fail_json(msg=f"systemctl show failed: {shown.stderr.strip()}")
    blocks = shown.stdout.strip().split("\n\n")
    if len(blocks) != len(names):
        module.fail_json(msg=f"systemctl show answered for {len(blocks)} of {len(names)} units")
    states = {}
    for name, block in zip(names, blocks, strict=True):
        states[name] = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    return states


def actions(unit: dict, state: dict[str, str]) -> list[list[str]]:
    """The systemctl commands that bring the unit from state to what is wanted, in order."""
    name = unit["name"]
    masked = state.get("UnitFileState") == "masked" or state.get("LoadState") == "masked"
    active = state.get("ActiveState") in ("active", "activating", "reloading")
    steps = []
    if unit["masked"] is True and not masked:
        steps.append(["mask", name])
    if unit["masked"] is False and masked:
        steps.append(["unmask", name])
        masked = False
    if unit["enabled"] is True and (masked or state.get("UnitFileState") not in
                                    ("enabled", "enabled-runtime", "static", "alias")):
        steps.append(["enable", name])
    if unit["enabled"] is False and state.get("UnitFileState") in ("enabled", "enabled-runtime"):
        steps.append(["disable", name])
    if unit["state"] == "started" and not active:
        steps.append(["start", name])
    if unit["state"] == "stopped" and active:
        steps.append(["stop", name])
    return steps


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "dict", "required": True, "options": UNIT_SPEC},
            "daemon_reload": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    units = [
        {**unit, "name": name}
        for unit in module.params["units"]
        for name in ([unit["name"]] if unit.get("name") else unit.get("names") or [])
    ]
    if module.params["daemon_reload"] and not module.check_mode:
        systemctl("daemon-reload")
    states = current(module, [unit["name"] for unit in units])
    missing = [
        unit["name"] for unit in units
        if states[unit["name"]].get("LoadState") == "not-found" and not unit["optional"]
        and unit["masked"] is not True
    ]
    if missing:
        module.fail_json(msg=f"no such unit: {', '.join(missing)}")
    planned = []
    for unit in units:
        state = states[unit["name"]]
        if state.get("LoadState") == "not-found" and unit["masked"] is not True:
            continue  # an optional unit that is not there
        planned += [(unit, step) for step in actions(unit, state)]
    result = {
        "changed": bool(planned),
        "actions": [" ".join(step) for _, step in planned],
        "cityguard_changed_controls": sorted(
            {unit["control"] for unit, _ in planned if unit.get("control")}
        ),
    }
    if module._diff:
        after = "".join(f"systemctl {action}\n" for action in result["actions"])
        result["diff"] = {"before_header": "systemd units", "after_header": "systemd units",
                          "before": "", "after": after}
    if module.check_mode:
        module.exit_json(**result)
    for _unit, step in planned:
        done = systemctl(*step)
        if done.returncode != 0:
            module.fail_json(msg=f"systemctl {' '.join(step)} failed: {done.stderr.strip()}",
                             **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
