#!/usr/bin/python
"""Ansible module: set sysctl values at runtime, only where they differ, with check-mode diffs.

Network keys (net.*) belong to the host's network namespace and are applied everywhere, except
the few that exist only in the machine's initial namespace: a container does not have them.
Other keys (kernel.*, fs.*, vm.*) are global to the machine: inside a container they are neither
ours to set nor writable. Both kinds are reported as skipped in a container instead of failing
the play; the persisted file still carries them. On a real server a missing key is an error.
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


def main() -> None:
    module = AnsibleModule(argument_spec={"settings": {"type": "dict", "required": True}},
                           supports_check_mode=True)
    container = in_container()
    changed, skipped_global, skipped_namespace = [], [], []
    before, after = {}, {}
    for key, wanted in sorted(module.params["settings"].items()):
        wanted = " ".join(str(wanted).split())
        if container and not key.startswith("net."):
            skipped_global.append(key)
            continue
        current = read(key)
        if current is None:
            if container:
                skipped_namespace.append(key)
                continue
            module.fail_json(msg=f"sysctl {key} does not exist on this host")
        if current == wanted:
            continue
        before[key], after[key] = current, wanted
        changed.append(key)
        if not module.check_mode:
            try:
                with open(proc_path(key), "w") as stream:
                    stream.write(wanted)
            except OSError as exc:
                module.fail_json(msg=f"setting {key}={wanted} failed: {exc.strerror}")
    diff = {"before": "".join(f"{k} = {v}\n" for k, v in before.items()),
            "after": "".join(f"{k} = {v}\n" for k, v in after.items()),
            "before_header": "runtime", "after_header": "runtime"}
    module.exit_json(changed=bool(changed), changed_keys=changed, skipped_global=skipped_global,
                     skipped_initial_namespace_only=skipped_namespace, container=container,
                     diff=diff)


if __name__ == "__main__":
    main()
