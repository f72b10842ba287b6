"""World-writable and ownerless paths, from one pruned `find` over the local filesystems."""

import pytest


def _found(facts, param, control_id, kind):
    return facts.section("system-scan")[kind].excluding(param(control_id, "exclude_paths"))


@pytest.mark.controls("CG-FS-001")
def test_no_world_writable_files(facts, expect, param):
    expect.equal(
        _found(facts, param, "CG-FS-001", "ww-file").describe(), "none", "world-writable files"
    )


@pytest.mark.controls("CG-FS-001")
def test_world_writable_directories_are_sticky(facts, expect, param):
    expect.equal(
        _found(facts, param, "CG-FS-001", "ww-dir").describe(),
        "none",
        "world-writable directories without the sticky bit",
    )


@pytest.mark.controls("CG-FS-002")
def test_no_unowned_files(facts, expect, param):
    expect.equal(
        _found(facts, param, "CG-FS-002", "unowned").describe(),
        "none",
        "files whose owner does not exist",
    )


@pytest.mark.controls("CG-FS-002")
def test_no_ungrouped_files(facts, expect, param):
    expect.equal(
        _found(facts, param, "CG-FS-002", "ungrouped").describe(),
        "none",
        "files whose group does not exist",
    )
