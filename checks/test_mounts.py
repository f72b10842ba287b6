"""Mount options of /tmp, /dev/shm and /var/tmp: one check per option, now and at boot.

"Now" is the mount table; "at boot" is what systemd will mount: the mount unit found first in
its precedence order (/etc/fstab counts as one), with its drop-ins. A directory that is not a
separate mount passes with "not a separate mount" recorded: its options are those of the
filesystem holding it, which this control does not change.
"""

import pytest

from cityguard.verify.sections.kernel_mounts import (
    NOT_SEPARATE,
    boot_option_state,
    mount_option_state,
)

# the control's definition (its title names the directory and the options), as in the role
MOUNT_POINTS = {"CG-MNT-001": "/tmp", "CG-MNT-002": "/dev/shm", "CG-MNT-003": "/var/tmp"}
OPTIONS = ("nodev", "nosuid", "noexec")

CASES = [
    pytest.param(
        control_id,
        option,
        marks=pytest.mark.controls(control_id),
        id=f"{control_id}:{path}:{option}",
    )
    for control_id, path in MOUNT_POINTS.items()
    for option in OPTIONS
]


@pytest.mark.parametrize(("control_id", "option"), CASES)
def test_mount_option_active(control_id, option, facts, expect):
    path = MOUNT_POINTS[control_id]
    state = mount_option_state(facts.section("kernel-mounts"), path, option)
    expect.one_of(state, [option, NOT_SEPARATE], path)


@pytest.mark.parametrize(("control_id", "option"), CASES)
def test_mount_option_persisted(control_id, option, facts, expect):
    path = MOUNT_POINTS[control_id]
    state, source = boot_option_state(facts.section("kernel-mounts"), path, option)
    expect.one_of(state, [option, NOT_SEPARATE], f"{path} at boot ({source})")
