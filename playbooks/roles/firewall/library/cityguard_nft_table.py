#!/usr/bin/python
"""Ansible module: make one nftables table in force match a ruleset file, or put back the
table that was in force before, with check-mode diffs.

"Match" is decided on nft's own listing: the wanted ruleset is loaded into a throw-away network
namespace and listed there, and compared with the listing of the table in force. So a second run
changes nothing, and a table changed or deleted by hand is put back. The ruleset must replace
only its own table (`table F T {}` / `delete table F T` / `table F T { ... }`), so other
tables (a site's own, a container engine's) are left alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cityguard_nft_table
short_description: Load one nftables table when it differs from what is in force, or restore it
options:
  content:
    description: The ruleset text (state=present).
    type: str
  family:
    description: The table's family.
    type: str
    default: inet
  table:
    description: The table's name.
    type: str
    required: true
  state:
    description: present loads `content` when it differs; restore puts `previous` back.
    type: str
    choices: [present, restore]
    default: present
  previous:
    description: The listing returned as `previous` by state=present; null removes the table.
    type: str
"""


def run(module, argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def listing(module, family, table):
    """The table as nft lists it, or None when it does not exist."""
    result = run(module, ["nft", "list", "table", family, table])
    return result.stdout if result.returncode == 0 else None


def write_temp(text):
    handle, path = tempfile.mkstemp(prefix="cityguard-nft-", suffix=".nft")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    return path


def wanted_listing(module, path, family, table):
    """Load the ruleset into a scratch network namespace and list the table there."""
    script = f"nft -f {path} && nft list table {family} {table}"
    result = run(module, ["unshare", "--net", "sh", "-c", script])
    if result.returncode != 0:
        module.fail_json(msg="nft rejected the ruleset: " + (result.stderr or result.stdout).strip())
    return result.stdout


def load(module, path):
    result = run(module, ["nft", "-f", path])
    if result.returncode != 0:
        module.fail_json(msg="loading the ruleset failed: " + result.stderr.strip())


def main():
    module = AnsibleModule(
        argument_spec={
            "content": {"type": "str"},
            "family": {"type": "str", "default": "inet"},
            "table": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "restore"], "default": "present"},
            "previous": {"type": "str"},
        },
        required_if=[("state", "present", ["content"])],
        supports_check_mode=True,
    )
    family, table = module.params["family"], module.params["table"]
    current = listing(module, family, table)
    if module.params["state"] == "restore":
        previous = module.params["previous"]
        if not module.check_mode:
            if previous:
                path = write_temp(f"table {family} {table} {{}}\ndelete table {family} {table}\n"
                                  + previous)
                try:
                    load(module, path)
                finally:
                    os.unlink(path)
            elif current is not None:
                run(module, ["nft", "delete", "table", family, table])
        module.exit_json(changed=current != previous, restored=previous is not None)
    path = write_temp(module.params["content"])
    try:
        wanted = wanted_listing(module, path, family, table)
        changed = wanted != current
        if changed and not module.check_mode:
            load(module, path)
    finally:
        os.unlink(path)
    module.exit_json(
        changed=changed,
        previous=current,
        diff={"before": current or "", "after": wanted,
              "before_header": f"{family} {table} (in force)", "after_header": "wanted"},
    )


if __name__ == "__main__":
    main()
