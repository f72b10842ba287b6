"""Backups a source host runs itself: the plan's rules, the job cityguard deploys, and the agent
that runs it, whose manifest must be the one a drill reads (the engine's ``Manifest``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from drill_plan_files import load, plan_file, s3_repository

from cityguard.config.errors import ConfigError
from cityguard.core.errors import UsageError
from cityguard.drill import manifest as mf
from cityguard.drill import push, units
from cityguard.drill.deploy import host_job, select_push_plans
from cityguard.hostside import cityguard_backup_agent as agent


def pushed(data: dict[str, Any]) -> None:
    data["backup_runs_on"] = "source-host"
    s3_repository(data)


def test_a_pushing_plan_loads_and_the_default_is_the_control_node(tmp_path: Path) -> None:
    plan = load(plan_file(tmp_path, pushed))[0]
    assert plan.spec.backup_runs_on == "source-host"
    assert plan.repository_location == "s3:http://10.20.1.1:7070/city-backups/portal"
    other = load(plan_file(tmp_path, name="document-registry"))[0]
    assert other.spec.backup_runs_on == "control-node"
    assert plan.pushed_from == "db1" and other.pushed_from is None


def test_push_problems_are_reported_together_with_their_lines(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["backup_runs_on"] = "source-host"
        data["sources"][1]["host"] = "web1"  # uploads elsewhere than the database

    with pytest.raises(ConfigError) as caught:
        load(plan_file(tmp_path, edit))
    text = "\n".join(caught.value.lines())
    assert (
        "backup_runs_on: 'source-host' needs every source on one host; they are on db1, web1"
        in (text)
    )
    assert "'source-host' needs repository.s3: a source host cannot reach a local path" in text
    assert all(line.startswith("citizen-portal.yml:") for line in caught.value.lines())


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:7070", "http://localhost:9000"])
def test_a_loopback_endpoint_is_refused_for_a_pushing_plan(tmp_path: Path, endpoint: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        pushed(data)
        data["repository"]["s3"]["endpoint"] = endpoint

    with pytest.raises(ConfigError) as caught:
        load(plan_file(tmp_path, edit))
    (line,) = caught.value.lines()
    assert "repository.s3.endpoint: " in line and "is the loopback address" in line


def test_the_job_runs_locally_with_the_pinned_restic_and_holds_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGUARD_RESTIC_PASSWORD", "correct horse battery")
    monkeypatch.setenv("CG_S3_ACCESS", "AKIAEXAMPLE")
    monkeypatch.setenv("CG_S3_SECRET", "s3cr3t-key-value")
    plan = load(plan_file(tmp_path, pushed))[0]
    job = push.job(plan)
    text = json.dumps(host_job(plan))
    for secret in ("correct horse battery", "AKIAEXAMPLE", "s3cr3t-key-value"):
        assert secret not in text
    db, uploads = job["sources"]
    assert db["backup"][0] == push.RESTIC
    assert db["backup"][:3] == [push.RESTIC, "--repo", plan.repository_location]
    command = db["backup"][db["backup"].index("--") + 1 :]
    assert command[:2] == ["sh", "-c"] and "pg_dump -Fc -p 5432 -- citizen_portal" in command[2]
    assert "cg-set=@SET@" in db["backup"] and "cg-part=portal-db" in db["backup"]
    assert db["counts"].startswith("sudo -n -u postgres psql") and db["newest"]
    assert uploads["hashes"] and "tar --numeric-owner" in uploads["backup"][-1]
    assert "--prune" in job["forget"] and job["timeout_s"] == plan.spec.backup_timeout_s
    credentials = json.loads(push.credentials(plan))
    assert credentials == {
        "RESTIC_PASSWORD": "correct horse battery",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-key-value",
    }
    service = units.agent_service("citizen-portal", "/usr/bin/python3", push.AGENT, "j", "c")
    assert f"ExecStart=/usr/bin/python3 {push.AGENT} j c" in service
    assert "OnCalendar=*-*-* 01:30:00" in host_job(plan)["timer"]


def _summary(snapshot: str, size: int) -> str:
    return "\n".join(
        [
            json.dumps({"message_type": "status", "percent_done": 0.5}),
            json.dumps(
                {"message_type": "summary", "snapshot_id": snapshot, "total_bytes_processed": size}
            ),
        ]
    )


class FakeHost:
    """What the host's commands print, in the order the agent runs them."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.snapshots = iter(["a" * 64, "b" * 64, "c" * 64, "d" * 64])

    def __call__(self, argv: list[str], what: str, input_text: str | None, left: float) -> str:
        self.calls.append((argv, input_text))
        command = argv[2] if argv[:2] == ["sh", "-c"] else ""
        if "count(*)" in command:
            return "citizens|1000\napplications|20000\npayments|5000\naudit_log|7\n"
        if "max(submitted_at)" in command:
            return "2026-12-01T10:00:00Z\n"
        if "sha256sum" in command:
            return f"{'e' * 64}  /srv/citizen-portal/uploads/a.pdf\n"
        if argv[0] == push.RESTIC and "backup" in argv and "--stdin" not in argv:
            return _summary(next(self.snapshots), 1234)
        if "--stdin" in argv:
            return _summary("f" * 64, 99)
        return ""


def test_the_agent_writes_the_manifest_a_drill_reads(tmp_path: Path) -> None:
    plan = load(plan_file(tmp_path, pushed))[0]
    job = json.loads(json.dumps(push.job(plan)))  # as the host reads it
    host = FakeHost()
    lines: list[str] = []
    manifest = agent.Agent(job, host, 60).backup(
        datetime(2026, 12, 3, 7, 0, tzinfo=UTC), lines.append
    )
    read = mf.Manifest.from_json(host.calls[-2][1] or "")  # the manifest snapshot's stdin
    assert read.system == "citizen-portal" and read.set_id == manifest["set_id"]
    assert read.set_id.startswith("20261203T070000Z-")
    db = read.sources["portal-db"]
    assert db.row_counts["applications"] == 20000 and db.newest_row == "2026-12-01T10:00:00Z"
    assert db.globals_snapshot == "a" * 64 and db.snapshot == "b" * 64 and db.bytes == 1234
    assert db.path == mf.dump_path("citizen-portal", "portal-db")
    uploads = read.sources["uploads"]
    assert uploads.hashes == {"/srv/citizen-portal/uploads/a.pdf": "e" * 64}
    assert uploads.kind == "files" and uploads.snapshot == "c" * 64
    tagged = [argv for argv, _ in host.calls if argv[0] == push.RESTIC and "backup" in argv]
    assert all(f"cg-set={read.set_id}" in argv for argv in tagged)
    assert not any(push.SET_PLACEHOLDER in part for argv, _ in host.calls for part in argv)
    assert host.calls[0][0][-1] == "unlock" and "forget" in host.calls[-1][0]
    assert lines[-1] == f"citizen-portal: set {read.set_id} done"


def test_a_failing_step_stops_the_agent_with_one_line(tmp_path: Path) -> None:
    plan = load(plan_file(tmp_path, pushed))[0]

    def runner(argv: list[str], what: str, input_text: str | None, left: float) -> str:
        if "pg_dump -Fc" in " ".join(argv):
            stderr = (
                "Save(<data/1>) returned error, retrying after 1.0s: dial tcp: refused\n"
                "Save(<data/1>) returned error, retrying after 2.0s: dial tcp: refused\n"
                '{"message_type":"exit_error","code":1,"message":"Fatal: unable to save '
                'snapshot: connection refused"}\n'
            )
            raise agent.AgentError(agent.failure_line(what, 1, stderr))
        return FakeHost()(argv, what, input_text, left)

    with pytest.raises(agent.AgentError) as caught:
        agent.Agent(push.job(plan), runner, 60).backup(datetime.now(UTC), lambda _: None)
    assert str(caught.value) == (
        "backing up portal-db: exit code 1 after 2 retries: "
        "Fatal: unable to save snapshot: connection refused"
    )


def test_the_agent_refuses_a_job_of_another_format() -> None:
    with pytest.raises(agent.AgentError, match="job format 2 is not 1"):
        agent.Agent({"format": 2}, FakeHost(), 60)


def test_the_agent_main_reports_a_missing_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agent.main(["agent", str(tmp_path / "job.json"), str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot read the job file" in err


def test_deploy_selection_refuses_what_cannot_be_pushed_all_at_once(tmp_path: Path) -> None:
    pushing = load(plan_file(tmp_path, pushed))[0]
    pulled = load(plan_file(tmp_path, name="document-registry"))[0]
    plans = {pushing.system: pushing, pulled.system: pulled}
    assert select_push_plans(plans, []) == [pushing]
    with pytest.raises(UsageError) as caught:
        select_push_plans(plans, ["document-registry", "payroll"])
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("system: document-registry is backed up by the control node")
    assert lines[1].startswith("system: no plan for 'payroll'")
    with pytest.raises(UsageError, match="no plan has backup_runs_on: source-host"):
        select_push_plans({pulled.system: pulled}, [])
