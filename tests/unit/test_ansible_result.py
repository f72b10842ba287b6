"""The pure conversions from ansible-runner data to cityguard's typed results.

The dicts below are trimmed from a real ansible-runner 2.4.3 / ansible-core 2.19 run, so these
tests pin the event shapes the wrapper relies on without needing Ansible to run.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cityguard.ansible.events import (
    HostStats,
    PlaybookResult,
    TaskResult,
    host_stats_from_runner,
    read_task_tags,
    task_result_from_event,
    task_results_from_events,
)
from cityguard.ansible.progress import PlaybookProgress, host_line, tally_event
from cityguard.ansible.run import PlaybookRequest, _envvars

# runner.stats after: h1 changed a file and skipped two tasks, h2 failed, h3 was unreachable.
RUNNER_STATS: dict[str, Any] = {
    "skipped": {"h1": 2, "h2": 1},
    "ok": {"h2": 2, "h1": 2},
    "dark": {"h3": 1},
    "failures": {"h2": 1},
    "ignored": {},
    "rescued": {},
    "processed": {"h2": 1, "h1": 1, "h3": 1},
    "changed": {"h2": 1, "h1": 1},
}

TASK_UUID = "02fc0000-0001-54ff-7b82-000000000005"
COMMON = {
    "playbook": "site.yml",
    "play": "all",
    "task_uuid": TASK_UUID,
    "task_path": "/srv/playbooks/roles/motd/tasks/main.yml:1",
}


def event(kind: str, /, **data: Any) -> dict[str, Any]:
    return {"event": kind, "counter": 1, "uuid": "x", "event_data": {**COMMON, **data}}


TASK_START = event(
    "playbook_on_task_start",
    task="write motd",
    name="write motd",
    task_action="ansible.builtin.copy",
    resolved_action="ansible.builtin.copy",
    is_conditional=False,
)
RUNNER_START = event("runner_on_start", task="write motd", host="h1")
CHANGED = event(
    "runner_on_ok",
    task="write motd",
    role="motd",
    host="h1",
    task_action="copy",
    resolved_action="ansible.builtin.copy",
    res={
        "diff": [{"before": "", "after_header": "/etc/motd", "after": "hello\n"}],
        "dest": "/etc/motd",
        "changed": True,
        "_ansible_no_log": False,
    },
)
UNCHANGED = event(
    "runner_on_ok",
    task="write motd",
    host="h2",
    resolved_action="ansible.builtin.copy",
    res={"diff": {"before": "x", "after": "x"}, "changed": False},
)
FAILED = event(
    "runner_on_failed",
    task="fail on h2",
    host="h2",
    resolved_action="ansible.builtin.fail",
    res={"msg": "boom on h2", "changed": False, "exception": "(traceback unavailable)"},
    ignore_errors=None,
)
SECRET_FAILED = event(
    "runner_on_failed",
    task="set password",
    host="h1",
    resolved_action="ansible.builtin.command",
    res={
        "censored": "the output has been hidden due to the fact that 'no_log: true' was "
        "specified for this result",
        "changed": False,
    },
)
LOOP_FAILED_IGNORED = event(
    "runner_on_failed",
    task="loopfail",
    host="h1",
    resolved_action="ansible.builtin.fail",
    res={
        "results": [
            {"failed": True, "msg": "item 1", "item": 1, "_ansible_item_label": 1},
            {"failed": False, "msg": "fine", "item": 2},
            {"failed": True, "msg": "item 3", "item": 3, "_ansible_item_label": 3},
        ],
        "msg": "One or more items failed",
        "changed": False,
    },
    ignore_errors=True,
)
LOOP_CHANGED = event(
    "runner_on_ok",
    task="role task",
    role="r1",
    host="h1",
    resolved_action="ansible.builtin.copy",
    res={
        "results": [
            {"diff": [{"before": "", "after": "a\n"}], "changed": True, "item": "a"},
            {"diff": [{"before": "", "after": "b\n"}], "changed": True, "item": "b"},
        ],
        "changed": True,
        "msg": "All items completed",
    },
)
SKIPPED = event("runner_on_skipped", task="skip me", host="h1", resolved_action="debug")
UNREACHABLE = event(
    "runner_on_unreachable",
    task="write motd",
    host="h3",
    resolved_action="ansible.builtin.copy",
    res={"msg": "Failed to connect to the host via ssh", "unreachable": True, "changed": False},
)
STATS = {"event": "playbook_on_stats", "event_data": {"playbook": "site.yml", **RUNNER_STATS}}

TAGS = {TASK_UUID: ["motd", "roletag"]}


def test_host_stats_from_runner_covers_hosts_missing_from_some_counters() -> None:
    hosts = host_stats_from_runner(RUNNER_STATS)

    assert hosts == {
        "h1": HostStats(ok=2, changed=1, failed=0, unreachable=0, skipped=2),
        "h2": HostStats(ok=2, changed=1, failed=1, unreachable=0, skipped=1),
        "h3": HostStats(ok=0, changed=0, failed=0, unreachable=1, skipped=0),
    }


def test_host_stats_from_runner_without_stats_is_empty() -> None:
    # runner.stats is None when the playbook died before its recap (e.g. a syntax error).
    assert host_stats_from_runner(None) == {}
    assert host_stats_from_runner({"artifact_data": {}, "playbook": "x.yml"}) == {}


def test_changed_task_keeps_role_tags_action_and_diff() -> None:
    result = task_result_from_event(CHANGED, TAGS)

    assert result == TaskResult(
        host="h1",
        task="write motd",
        role="motd",
        tags=["motd", "roletag"],
        action="ansible.builtin.copy",
        status="changed",
        message=None,
        diff=[{"before": "", "after_header": "/etc/motd", "after": "hello\n"}],
    )


def test_a_multi_control_task_is_reported_against_the_controls_it_changed() -> None:
    from cityguard.harden.action import controls_of_task

    tags = {TASK_UUID: ["banners", "CG-BAN-001", "CG-BAN-002", "CG-BAN-003"]}
    res = {"changed": True, "cityguard_changed_controls": ["CG-BAN-002", "CG-BAN-003"]}
    changed = task_result_from_event(
        {**CHANGED, "event_data": {**CHANGED["event_data"], "res": res}}, tags
    )
    plain = task_result_from_event(CHANGED, tags)

    assert changed is not None and plain is not None
    # only the controls the module says needed the change, and only those selected
    assert controls_of_task(changed, ["CG-BAN-001", "CG-BAN-002"]) == ["CG-BAN-002"]
    # a module that does not say falls back to the task's tags
    assert controls_of_task(plain, ["CG-BAN-001", "CG-BAN-002"]) == ["CG-BAN-001", "CG-BAN-002"]


def test_unchanged_task_is_ok_without_diff_and_unknown_tags_are_empty() -> None:
    result = task_result_from_event(UNCHANGED, {})

    assert result is not None
    assert (result.status, result.diff, result.role, result.tags) == ("ok", None, None, [])


def test_failure_carries_only_its_message() -> None:
    result = task_result_from_event(FAILED, TAGS)

    assert result is not None
    assert (result.status, result.message, result.ignored) == ("failed", "boom on h2", False)
    assert "traceback" not in repr(result)


def test_no_log_failure_says_hidden_and_nothing_else() -> None:
    result = task_result_from_event(SECRET_FAILED, TAGS)

    assert result is not None
    assert result.status == "failed"
    assert result.message == "output hidden: the task is no_log"


def test_loop_failure_collects_failed_items_messages_and_ignore_errors() -> None:
    result = task_result_from_event(LOOP_FAILED_IGNORED, TAGS)

    assert result is not None
    assert result.message == "One or more items failed; item 1; item 3"
    assert result.ignored


def test_loop_change_collects_every_items_diff() -> None:
    result = task_result_from_event(LOOP_CHANGED, TAGS)

    assert result is not None
    assert result.status == "changed"
    assert result.diff == [{"before": "", "after": "a\n"}, {"before": "", "after": "b\n"}]


def test_unreachable_and_skipped() -> None:
    unreachable = task_result_from_event(UNREACHABLE, TAGS)
    skipped = task_result_from_event(SKIPPED, TAGS)

    assert unreachable is not None and skipped is not None
    assert (unreachable.status, unreachable.message) == (
        "unreachable",
        "Failed to connect to the host via ssh",
    )
    assert (skipped.status, skipped.message, skipped.diff) == ("skipped", None, None)


def test_task_results_keep_only_result_events_in_order() -> None:
    events = [TASK_START, RUNNER_START, CHANGED, UNCHANGED, FAILED, STATS]

    results = task_results_from_events(events, TAGS)

    assert [(r.host, r.status) for r in results] == [
        ("h1", "changed"),
        ("h2", "ok"),
        ("h2", "failed"),
    ]


def test_playbook_result_properties() -> None:
    result = PlaybookResult(
        rc=2,
        status="failed",
        hosts=host_stats_from_runner(RUNNER_STATS),
        tasks=[],
        artifacts_dir=Path("/tmp/run/artifacts/x"),
    )

    assert result.changed_total == 2
    assert result.failed_hosts == ["h2"]
    assert result.unreachable_hosts == ["h3"]
    assert not result.ok


def test_playbook_result_ok_needs_rc_zero_and_no_bad_host() -> None:
    good = {"h1": HostStats(ok=3, changed=1)}
    path = Path("/tmp/x")

    assert PlaybookResult(0, "successful", good, [], path).ok
    assert not PlaybookResult(4, "failed", good, [], path).ok
    assert not PlaybookResult(0, "successful", {"h1": HostStats(unreachable=1)}, [], path).ok


def test_read_task_tags_skips_a_truncated_line(tmp_path: Path) -> None:
    path = tmp_path / "tags.jsonl"
    path.write_text(json.dumps(["u1", ["a", "b"]]) + "\n" + '["u2", ["c"' + "\n")

    assert read_task_tags(path) == {"u1": ["a", "b"]}
    assert read_task_tags(tmp_path / "missing.jsonl") == {}


def test_live_tally_counts_like_ansible_recap() -> None:
    stats = HostStats()
    for ev in (CHANGED, SKIPPED, LOOP_FAILED_IGNORED, SECRET_FAILED, RUNNER_START):
        stats = tally_event(stats, ev)

    # ok counts changed and ignored failures too, as Ansible's recap does.
    assert stats == HostStats(ok=2, changed=1, failed=1, unreachable=0, skipped=1)


def test_progress_shows_host_lines_and_final_recap_without_task_output() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)

    with PlaybookProgress("site.yml", console=console) as view:
        for ev in (TASK_START, CHANGED, SECRET_FAILED, FAILED, UNREACHABLE, STATS):
            assert view.on_event(ev) is True

    text = out.getvalue()
    assert "site.yml: tasks started 1" in text
    assert host_line("h2", HostStats(ok=2, changed=1, failed=1, skipped=1)) in text
    assert "h3: ok 0 changed 0 failed 0 unreachable 1" in text
    assert "boom" not in text and "hello" not in text and "censored" not in text


def test_disabled_progress_prints_nothing() -> None:
    out = io.StringIO()

    with PlaybookProgress("site.yml", console=Console(file=out), enabled=False) as view:
        view.on_event(CHANGED)

    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ("[defaults]\ngathering = explicit\n", "True"),
        ("[defaults]\nhost_key_checking = False ; lab only\n", "False"),
        (None, "True"),
    ],
)
def test_host_key_checking_follows_ansible_cfg_not_runners_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cfg: str | None, expected: str
) -> None:
    # Runner would otherwise set ANSIBLE_HOST_KEY_CHECKING=False and override ansible.cfg.
    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)
    if cfg is not None:
        (tmp_path / "ansible.cfg").write_text(cfg)
    request = PlaybookRequest(tmp_path, "site.yml", tmp_path / "inv.yml", tmp_path / "run")

    env = _envvars(request, tmp_path / "tags.jsonl")

    assert env["ANSIBLE_HOST_KEY_CHECKING"] == expected
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert ("ANSIBLE_CONFIG" in env) is (cfg is not None)


def test_ansible_sees_only_allowed_inherited_variables_and_no_registered_secret() -> None:
    from cityguard.ansible.run import allowed_environment
    from cityguard.core.secrets import forget_secrets, register_secret

    inherited = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_TIME": "lv_LV.UTF-8",
        "KC_ADMIN_PW": "kc-s3cret",  # a name no pattern would catch
        "CITYGUARD_PG": "postgresql://u:pw@db/ev",
        "ANSIBLE_STDOUT_CALLBACK": "yaml",
    }
    passed = {"PATH": "/venv/bin:/usr/bin", "CITYGUARD_TASK_TAGS_FILE": "/run/x/tags.jsonl"}
    # runner seeds with everything inherited, adds what cityguard passed and its own settings
    prepared = {**inherited, **passed, "ANSIBLE_STDOUT_CALLBACK": "awx_display"}
    prepared["SSH_AUTH_SOCK"] = "/tmp/ssh-agent-for-tok3n/agent.1"
    inherited["SSH_AUTH_SOCK"] = prepared["SSH_AUTH_SOCK"]
    register_secret("tok3n")
    try:
        env = allowed_environment(prepared, inherited, passed)
    finally:
        forget_secrets()

    assert "KC_ADMIN_PW" not in env
    assert "CITYGUARD_PG" not in env
    assert env["PATH"] == "/venv/bin:/usr/bin"
    assert env["HOME"] == "/root"
    assert env["LC_TIME"] == "lv_LV.UTF-8"
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "awx_display"  # runner's, not the inherited one
    assert env["CITYGUARD_TASK_TAGS_FILE"] == "/run/x/tags.jsonl"
    assert "tok3n" not in env["SSH_AUTH_SOCK"]  # registered secrets go, whatever the name
