"""Core dumps: a hard limit of 0 for every login, none for setuid programs, none kept by
systemd-coredump.

fs.suid_dumpable is global to the machine: in a lab container only its persisted value is
checked (the runtime check records not-applicable with the reason).
"""

import pytest

from cityguard.verify.sections.kernel import (
    catalog_parameters,
    expect_sysctl_persisted,
    expect_sysctl_runtime,
)
from cityguard.verify.sections.kernel_limits import effective_limit

CONTROLS = catalog_parameters(__file__, "core_dumps.yml")


def per_setting(control_id, parameter):
    return [
        pytest.param(
            control_id, key, marks=pytest.mark.controls(control_id), id=f"{control_id}:{key}"
        )
        for key in sorted(CONTROLS[control_id][parameter])
    ]


@pytest.mark.controls("CG-CORE-001")
def test_core_hard_limit_is_zero(facts, expect):
    entry = effective_limit(facts.section("kernel-limits"), "*", "core", "hard")
    where = entry.file if entry else "no limits file"
    expect.equal(entry.value if entry else None, "0", f"* hard core in {where}")


@pytest.mark.parametrize(("control_id", "key"), per_setting("CG-CORE-002", "settings"))
def test_suid_dumpable_active(control_id, key, facts, expect, param):
    expect_sysctl_runtime(facts, expect, key, str(param(control_id, "settings")[key]))


@pytest.mark.parametrize(("control_id", "key"), per_setting("CG-CORE-002", "settings"))
def test_suid_dumpable_persisted(control_id, key, facts, expect, param):
    expect_sysctl_persisted(facts, expect, key, str(param(control_id, "settings")[key]))


@pytest.mark.parametrize(("control_id", "key"), per_setting("CG-CORE-003", "coredump_settings"))
def test_coredump_setting(control_id, key, facts, expect, param):
    value, source = facts.section("kernel-coredump").get(key, (None, "no file"))
    expect.equal(value, str(param(control_id, "coredump_settings")[key]), f"{key} in {source}")
