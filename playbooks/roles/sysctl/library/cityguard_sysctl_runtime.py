#!/usr/bin/python
"""Ansible module: set sysctl values at runtime, only where they differ, with check-mode diffs.

Network keys (net.*) belong to the host's network namespace and are applied everywhere, except
the few that exist only in the machine's initial namespace: a container does not have them.
Other keys (kernel.*, fs.*, vm.*) are global to the machine: inside a container they are neither
ours to set nor writable. Both kinds are reported as skipped in a container instead of failing
the play; the persisted file still carries them. On a real server a missing key is an error.

Writing a key can change others (forwarding off sets accept_redirects back to 1), so forwarding
keys are written first and every key is read back after writing, and written again where it
moved; a key that does not keep its value fails the task. With `controls` (key -> control ids),
each changed key is reported against its own controls (`cityguard_changes`).
"""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cityguard_host import in_container

DOCUMENTATION = r"""
module: cityguard_sysctl_runtime
short_description: Apply sysctl values at runtime where they differ
options:
  settings:
    description: key -> value
    type: dict
    required: true
  controls:
    description: key -> the control ids it serves
    type: dict
    default: {}
"""

PROC_SYS = "/proc/sys"


def proc_path(key: str) -> str:
    return os.path.join(PROC_SYS, *key.split("."))


def read(key: str) -> str | None:
    try:
        with open(proc_path(key)) as stream:
            return " ".join(stream.read().split())
    except OSError:
        return None


def apply_order(keys: list[str]) -> list[str]:
    """Forwarding first: writing net.ipv4.ip_forward (or a conf.*.forwarding) makes the kernel
    reset other keys of the same interfaces (accept_redirects back to 1 when forwarding goes
    off), so every other key is written after it."""
    def rank(key: str) -> tuple[int, str]:
        forwarding = key.endswith(".ip_forward") or key.endswith(".forwarding")
        return (0 if forwarding else 1, key)

    return sorted(keys, key=rank)


def main() -> None:
    module = AnsibleModule(argument_spec={"settings": {"type": "dict", "required": True},
                                          "controls": {"type": "dict", "default": {}}},
                           supports_check_mode=True)
    container = in_container()
    controls = module.params["controls"]
    wanted_values: dict[str, str] = {}
    skipped_global, skipped_namespace = [], []
    before: dict[str, str] = {}
    for key in apply_order(list(module.params["settings"])):
        wanted = " ".join(str(module.params["settings"][key]).split())
        if container and not key.startswith("net."):
            skipped_global.append(key)
            continue
        current = read(key)
        if current is None:
            if container:
                skipped_namespace.append(key)
                continue
            module.fail_json(msg=f"sysctl {key} does not exist on this host")
        wanted_values[key] = wanted
        if current != wanted:
            before[key] = current
    # write, then read every key back: a write may have reset a key written or found right
    # before it; a few passes settle the order, a key that will not stay is a failure
    passes = 0
    while not module.check_mode and passes < 3:
        differing = [k for k in apply_order(list(wanted_values)) if read(k) != wanted_values[k]]
        if not differing:
            break
        passes += 1
        for key in differing:
            before.setdefault(key, read(key) or "")
            try:
                with open(proc_path(key), "w") as stream:
                    stream.write(wanted_values[key])
            except OSError as exc:
                module.fail_json(msg=f"setting {key}={wanted_values[key]} failed: {exc.strerror}")
    if not module.check_mode:
        unstable = {k: read(k) for k in wanted_values if read(k) != wanted_values[k]}
        if unstable:
            module.fail_json(msg="kernel parameters did not keep their values after "
                             f"{passes} passes: " + ", ".join(
                                 f"{k} = {v} (wanted {wanted_values[k]})"
                                 for k, v in sorted(unstable.items())))
    changed = sorted(before)
    changes = []
    for key in changed:
        diff = {"before": f"{key} = {before[key]}\n", "after": f"{key} = {wanted_values[key]}\n",
                "before_header": "runtime", "after_header": "runtime"}
        changes += [{"control": c, "what": key, "diff": diff} for c in controls.get(key) or []]
    diff = {"before": "".join(f"{k} = {before[k]}\n" for k in changed),
            "after": "".join(f"{k} = {wanted_values[k]}\n" for k in changed),
            "before_header": "runtime", "after_header": "runtime"}
    module.exit_json(changed=bool(changed), changed_keys=changed, skipped_global=skipped_global,
                     skipped_initial_namespace_only=skipped_namespace, container=container,
                     passes=passes, cityguard_changes=changes,
                     cityguard_changed_controls=sorted({c["control"] for c in changes}),
                     diff=diff)

if __name__ == "__main__":
    main()
