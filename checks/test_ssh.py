"""SSH daemon: proven on the effective configuration (`sshd -T`), not on the file text."""

import pytest

from cityguard.verify.facts import watch_paths

SSHD_CONFIG = watch_paths("/etc/ssh/sshd_config")[0]


@pytest.mark.controls("CG-SSH-001")
def test_sshd_refuses_root_login(facts, expect):
    expect.equal(facts.sshd_option("PermitRootLogin"), "no", "PermitRootLogin")


@pytest.mark.controls("CG-SSH-002")
def test_sshd_refuses_empty_passwords(facts, expect):
    expect.equal(facts.sshd_option("PermitEmptyPasswords"), "no", "PermitEmptyPasswords")


@pytest.mark.controls("CG-SSH-003")
def test_sshd_limits_auth_tries(facts, expect, param):
    value = facts.sshd_option("MaxAuthTries")
    observed = int(value) if value is not None else None
    expect.at_most(observed, int(param("CG-SSH-003", "max_auth_tries")), "MaxAuthTries")


@pytest.mark.controls("CG-SSH-004")
def test_sshd_config_is_private(facts, expect):
    stat = facts.stat(SSHD_CONFIG)
    expect.equal(f"{stat.owner}:{stat.group}" if stat else None, "root:root", "owner")
    expect.mode_at_most(stat.mode if stat else None, 0o600, "mode")
