"""Permissions of the files that hold accounts and password hashes."""

import pytest

from cityguard.verify.facts import watch_paths

SHADOW, PASSWD = watch_paths("/etc/shadow", "/etc/passwd")


@pytest.mark.controls("CG-FILE-001")
def test_shadow_is_private(facts, expect):
    stat = facts.stat(SHADOW)
    expect.one_of(f"{stat.owner}:{stat.group}" if stat else None,
                  ["root:root", "root:shadow"], "owner")
    expect.mode_at_most(stat.mode if stat else None, 0o640, "mode")


@pytest.mark.controls("CG-FILE-002")
def test_passwd_is_protected(facts, expect):
    stat = facts.stat(PASSWD)
    expect.equal(f"{stat.owner}:{stat.group}" if stat else None, "root:root", "owner")
    expect.mode_at_most(stat.mode if stat else None, 0o644, "mode")
