"""The hardening roles keep their contract: structure, per-OS variables, and traceability.

Every control remediated by a role has at least one task in that role tagged with its id (so a
change is reported against the control), every control id a task names exists, and Debian and
Ubuntu variable files define the same keys (Ubuntu is designed for, not run in the lab).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from cityguard.catalog import CONTROL_ID, load_catalog
from cityguard.config import content_root

ROOT = content_root()
ROLES = ROOT / "playbooks" / "roles"
PLAYBOOK = yaml.safe_load((ROOT / "playbooks" / "harden.yml").read_text())
ROLE_NAMES = [entry["role"] for entry in PLAYBOOK[0]["roles"]]
CATALOG = load_catalog(ROOT / "policies")


def tasks_in(items: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks_in(task.get(key))


def role_tasks(role: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for path in sorted((ROLES / role / "tasks").glob("*.yml")):
        tasks += list(tasks_in(yaml.safe_load(path.read_text())))
    return tasks


def task_control_ids(task: dict[str, Any]) -> set[str]:
    tags = task.get("tags") or []
    return {tag for tag in ([tags] if isinstance(tags, str) else tags) if CONTROL_ID.match(tag)}


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_role_has_tasks_meta_and_argument_specs(role: str) -> None:
    for part in ("tasks/main.yml", "meta/main.yml", "meta/argument_specs.yml"):
        assert (ROLES / role / part).is_file(), f"{role}: {part} missing"
    assert role_tasks(role), f"{role}: no tasks"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_debian_and_ubuntu_variables_define_the_same_keys(role: str) -> None:
    debian, ubuntu = ROLES / role / "vars" / "Debian.yml", ROLES / role / "vars" / "Ubuntu.yml"
    if not debian.exists() and not ubuntu.exists():
        return  # a role with nothing OS-specific (CI must not see a skip)
    assert debian.exists() and ubuntu.exists(), f"{role}: both vars files or neither"
    assert set(yaml.safe_load(debian.read_text()) or {}) == set(
        yaml.safe_load(ubuntu.read_text()) or {}
    )


def test_every_remediated_control_has_a_tagged_task_in_its_role() -> None:
    tagged: dict[str, set[str]] = {
        role: set().union(*(task_control_ids(t) for t in role_tasks(role))) for role in ROLE_NAMES
    }
    missing = [
        f"{control.id} (role {control.remediation.role})"
        for control in CATALOG.controls.values()
        if control.remediation.role != "manual"
        and control.id not in tagged.get(control.remediation.role, set())
    ]
    assert missing == []


def test_task_tags_name_existing_controls() -> None:
    unknown = [
        f"{role}: {task.get('name')}: {cid}"
        for role in ROLE_NAMES
        for task in role_tasks(role)
        for cid in task_control_ids(task)
        if cid not in CATALOG.controls
    ]
    assert unknown == []


def test_modules_are_fully_qualified() -> None:
    keywords = {
        "name",
        "when",
        "tags",
        "block",
        "rescue",
        "always",
        "loop",
        "loop_control",
        "register",
        "notify",
        "changed_when",
        "failed_when",
        "become",
        "delegate_to",
        "vars",
        "check_mode",
        "ignore_errors",
        "no_log",
        "listen",
        "environment",
        "until",
        "retries",
        "delay",
        "run_once",
        "diff",
        "args",
        "throttle",
        "ignore_unreachable",
        "timeout",
        "any_errors_fatal",
        "local_action",
    }
    own_modules = {p.stem for p in ROOT.glob("playbooks/**/library/*.py")}
    short = [
        f"{role}: {task.get('name')}: {key}"
        for role in ROLE_NAMES
        for task in role_tasks(role)
        for key in task
        if key not in keywords and "." not in key and key not in own_modules
    ]
    assert short == []
