"""Real playbook runs through ansible-runner against two local "hosts" (no root, no lab).

Both inventory hosts use the local connection and this venv's Python, so every run exercises
the whole path (runner, events, stats, artifacts, tags callback) while only writing files under
the test's tmp_path.
"""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from cityguard.ansible import AnsibleError, PlaybookRequest, PlaybookResult, run_playbook
from cityguard.ansible.progress import PlaybookProgress

pytestmark = pytest.mark.integration

ANSIBLE_CFG = """\
[defaults]
gathering = explicit
retry_files_enabled = False
host_key_checking = True

[connection]
pipelining = True
"""

SITE = [
    {
        "name": "write files",
        "hosts": "all",
        "roles": [{"role": "motd", "tags": ["motd_role"]}],
        "tasks": [
            {
                "name": "write banner",
                "ansible.builtin.copy": {
                    "dest": "{{ out_dir }}/{{ inventory_hostname }}-banner.txt",
                    "content": "authorised use only\n",
                },
                "tags": ["banner"],
            }
        ],
    }
]
MOTD_TASKS = [
    {
        "name": "write motd",
        "ansible.builtin.copy": {
            "dest": "{{ out_dir }}/{{ inventory_hostname }}-motd.txt",
            "content": "{{ motd }}\n",
        },
        "tags": ["motd"],
    }
]
FAILING = [
    {
        "name": "fail on one host",
        "hosts": "all",
        "tasks": [
            {
                "name": "refuse h2",
                "ansible.builtin.fail": {"msg": "h2 is not allowed here"},
                "when": "inventory_hostname == 'h2'",
            },
            {
                "name": "use a secret",
                "ansible.builtin.command": "echo {{ secret }}",
                "no_log": True,
                "changed_when": False,
            },
        ],
    }
]
SECRET = "s3cr3t-token-value"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A playbooks/ dir like the real one: playbooks, a role and a fast ansible.cfg."""
    project = tmp_path / "playbooks"
    (project / "roles" / "motd" / "tasks").mkdir(parents=True)
    (project / "ansible.cfg").write_text(ANSIBLE_CFG)
    (project / "site.yml").write_text(yaml.safe_dump(SITE, sort_keys=False))
    (project / "fail.yml").write_text(yaml.safe_dump(FAILING, sort_keys=False))
    (project / "roles" / "motd" / "tasks" / "main.yml").write_text(yaml.safe_dump(MOTD_TASKS))
    return project


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"h1": local, "h2": local}}}))
    return path


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def request_for(
    project: Path,
    inventory: Path,
    out_dir: Path,
    playbook: str = "site.yml",
    motd: str = "welcome",
    **changes: Any,
) -> PlaybookRequest:
    """One run_dir for all runs of a test, as cityguard reuses it between runs."""
    request = PlaybookRequest(
        project_dir=project,
        playbook=playbook,
        inventory=inventory,
        run_dir=project.parent / "run",
        extra_vars={"out_dir": str(out_dir), "motd": motd, "secret": SECRET},
    )
    return replace(request, **changes)


def statuses(result: PlaybookResult) -> dict[tuple[str, str], str]:
    return {(t.host, t.task): t.status for t in result.tasks}


def test_first_run_changes_then_second_run_is_idempotent(
    project: Path, inventory: Path, out_dir: Path
) -> None:
    first = run_playbook(request_for(project, inventory, out_dir))

    assert first.ok, first
    assert (first.rc, first.status) == (0, "successful")
    assert statuses(first) == {
        (host, task): "changed" for host in ("h1", "h2") for task in ("write motd", "write banner")
    }
    assert {h: (s.ok, s.changed, s.failed, s.unreachable) for h, s in first.hosts.items()} == {
        "h1": (2, 2, 0, 0),
        "h2": (2, 2, 0, 0),
    }
    assert first.changed_total == 4
    motd = next(t for t in first.tasks if t.task == "write motd")
    assert (motd.role, motd.action) == ("motd", "ansible.builtin.copy")
    assert sorted(motd.tags) == ["motd", "motd_role"]
    assert (out_dir / "h1-motd.txt").read_text() == "welcome\n"

    second = run_playbook(request_for(project, inventory, out_dir))

    assert second.ok
    assert second.changed_total == 0
    assert set(statuses(second).values()) == {"ok"}
    assert second.artifacts_dir != first.artifacts_dir


def test_check_mode_reports_the_change_with_a_diff_and_writes_nothing(
    project: Path, inventory: Path, out_dir: Path
) -> None:
    run_playbook(request_for(project, inventory, out_dir))
    before = (out_dir / "h1-motd.txt").read_text()

    check = run_playbook(
        request_for(project, inventory, out_dir, check=True, motd="changed!"),
    )

    assert check.ok
    assert check.changed_total == 2  # the motd on each host, nothing else
    changed = [t for t in check.tasks if t.status == "changed"]
    assert {(t.host, t.task) for t in changed} == {("h1", "write motd"), ("h2", "write motd")}
    for task in changed:
        assert task.diff and task.diff[0]["before"] == "welcome\n"
        assert task.diff[0]["after"] == "changed!\n"
    assert (out_dir / "h1-motd.txt").read_text() == before == "welcome\n"
    assert (out_dir / "h2-motd.txt").read_text() == "welcome\n"

    # A later real run must not inherit check mode from the check run's run_dir.
    real = run_playbook(request_for(project, inventory, out_dir, motd="changed!"))
    assert real.changed_total == 2
    assert (out_dir / "h1-motd.txt").read_text() == "changed!\n"


def test_failing_task_is_in_the_result_with_its_message_and_no_secret(
    project: Path, inventory: Path, out_dir: Path
) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)

    with PlaybookProgress("fail.yml", console=console) as view:
        result = run_playbook(
            request_for(project, inventory, out_dir, playbook="fail.yml"), on_event=view.on_event
        )

    assert result.rc != 0
    assert result.status == "failed"
    assert not result.ok
    assert result.failed_hosts == ["h2"]
    failed = [t for t in result.tasks if t.status == "failed"]
    assert [(t.host, t.task, t.message) for t in failed] == [
        ("h2", "refuse h2", "h2 is not allowed here")
    ]
    assert statuses(result)[("h1", "use a secret")] == "ok"
    assert SECRET not in repr(result)
    shown = out.getvalue()
    assert "h2: ok 0 changed 0 failed 1 unreachable 0" in shown
    assert "h1: ok 1 changed 0 failed 0 unreachable 0" in shown
    assert SECRET not in shown


def test_tags_and_limit_are_honoured(project: Path, inventory: Path, out_dir: Path) -> None:
    result = run_playbook(request_for(project, inventory, out_dir, tags=["banner"], limit="h1"))

    assert result.ok
    assert list(result.hosts) == ["h1"]
    assert [(t.host, t.task, t.tags) for t in result.tasks] == [("h1", "write banner", ["banner"])]
    assert sorted(p.name for p in out_dir.iterdir()) == ["h1-banner.txt"]

    skipped = run_playbook(request_for(project, inventory, out_dir, skip_tags=["banner"]))

    assert {t.task for t in skipped.tasks} == {"write motd"}
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "h1-banner.txt",
        "h1-motd.txt",
        "h2-motd.txt",
    ]


def test_artifacts_are_kept_with_job_events_and_no_extra_vars_in_argv(
    project: Path, inventory: Path, out_dir: Path
) -> None:
    request = request_for(project, inventory, out_dir)

    result = run_playbook(request)

    assert result.artifacts_dir.parent == (request.run_dir / "artifacts").resolve()
    events = sorted((result.artifacts_dir / "job_events").glob("*.json"))
    assert events, "runner kept no job events"
    assert any("playbook_on_stats" in e.read_text() for e in events)
    assert (result.artifacts_dir / "stdout").is_file()
    assert (result.artifacts_dir / "cityguard_task_tags.jsonl").is_file()
    command = (result.artifacts_dir / "command").read_text()
    assert SECRET not in command.split('"env"')[0], "extra vars must not be on the command line"


def test_missing_playbook_raises_a_clear_error(
    project: Path, inventory: Path, out_dir: Path
) -> None:
    with pytest.raises(AnsibleError) as raised:
        run_playbook(request_for(project, inventory, out_dir, playbook="nope.yml"))

    message = str(raised.value)
    assert "nope.yml" in message and str(project) in message
    assert "\n" not in message


def test_missing_inventory_raises_instead_of_being_taken_for_a_host(
    project: Path, tmp_path: Path, out_dir: Path
) -> None:
    with pytest.raises(AnsibleError, match=r"inventory .*missing\.yml does not exist"):
        run_playbook(request_for(project, tmp_path / "missing.yml", out_dir))


def test_secret_environment_values_are_not_kept_in_the_artifacts(
    project: Path, inventory: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's shell may hold secrets (Keycloak, S3, DSN); runner records its env."""
    secrets = {
        "CITYGUARD_KEYCLOAK_PASSWORD": "kc-hunter2-value",
        "AWS_SECRET_ACCESS_KEY": "s3-hunter2-value",
        "CITYGUARD_EVIDENCE_DSN": "postgresql://u:dsn-hunter2-value@127.0.0.1/e",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    result = run_playbook(request_for(project, inventory, out_dir))
    assert result.ok
    recorded = (result.artifacts_dir / "command").read_text()
    assert "CITYGUARD_KEYCLOAK_PASSWORD" not in recorded  # not on the allow-list: not passed
    run_dir = project.parent / "run"
    for path in run_dir.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            for value in secrets.values():
                assert value.encode() not in text, f"{value} leaked into {path}"
