"""Inventory.to_ansible_list: what `ansible-inventory --list` prints, so the check runs read it
instead of starting Ansible once per host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cityguard.config.inventory import load_inventory

INVENTORY = """
all:
  vars: {level: all, only_all: 1}
  children:
    web:
      vars: {level: web}
      hosts:
        web1: {ansible_host: 192.0.2.10}
      children:
        web_eu:
          vars: {level: web_eu}
          hosts:
            web2: {level: host}
    db:
      hosts:
        db1: {}
"""


def test_listing_merges_variables_as_ansible_ranks_them(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(INVENTORY)
    listing = load_inventory(path).to_ansible_list()
    hostvars = listing["_meta"]["hostvars"]
    assert hostvars["web1"] == {"level": "web", "only_all": 1, "ansible_host": "192.0.2.10"}
    assert hostvars["web2"]["level"] == "host"  # the host's own value wins over every group
    assert hostvars["db1"] == {"level": "all", "only_all": 1}
    assert listing["web"] == {"hosts": ["web1"], "children": ["web_eu"]}


ANSIBLE_INVENTORY = shutil.which("ansible-inventory", path=os.path.dirname(sys.executable))


@pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-inventory not installed")
def test_listing_gives_the_same_host_variables_as_ansible(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(INVENTORY)
    done = subprocess.run(
        [str(ANSIBLE_INVENTORY), "--list", "-i", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ANSIBLE_VERBOSITY": "0"},
    )
    ansible = json.loads(done.stdout)
    ours = load_inventory(path).to_ansible_list()
    for host, variables in ours["_meta"]["hostvars"].items():
        assert ansible["_meta"]["hostvars"].get(host, {}) == variables, host
