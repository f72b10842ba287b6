"""backup → drill on real lab hosts, a real restic 0.19.1 repository and real PostgreSQL.

The example site's sample data is loaded as `cityguard lab data` and the demo load it
(examples/site/lab.yml, data section): db1 gets the citizen-portal database (about 100k
generated rows) and an uploads tree, web1 the document registry; scratch1 sits alone on the
lab's recovery segment (no route to the other hosts) and the drill restores onto it. Faults: a
failing pg_dump, a restore target that is a source host or can reach the sources, a wrong
verification result, a wrong password.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import run_cli
from restic_locks import lock_files

from cityguard.config import load_site
from cityguard.config.paths import cache_dir
from cityguard.drill.restic import restic_binary
from cityguard.lab.site import data_for_site

pytestmark = pytest.mark.integration

PASSWORD = "drill-Secret-7f3a9c"
CLI = str(Path(sys.executable).parent / "cityguard")


def site_copy(tmp_path: Path, lab: Any, plan: str, edit: Any) -> Path:
    """The example site (same name, so the same lab and state) with one plan edited."""
    target = tmp_path / "site"
    shutil.copytree(lab.site_file.parent, target)
    path = target / "plans" / f"{plan}.yml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target / "site.yml"


@contextlib.contextmanager
def patched_into_the_data_segment(lab: Any) -> Iterator[None]:
    """A mistake the drill must catch: a patch cable between the recovery segment's switch and
    db1's, and an address of db1's segment on scratch1, so it can reach the sources again.
    The cable's ends are named like a lab host's veths, so a lab teardown removes them too."""
    hosts = {h.name: h for h in lab.lab.hosts}
    scratch, db = hosts["scratch1"].links[0], hosts["db1"].links[0]
    data = next(n for n in lab.lab.networks if n.name == db.network)
    address = f"{data.prefix[200]}/{data.prefix.prefixlen}"
    ends = (f"cg{lab.lab.lab_id}h99v0", f"cg{lab.lab.lab_id}h99v1")
    lab.ssh("scratch1", f"ip addr add {address} dev {scratch.interface}")
    try:
        subprocess.run(["ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1]],
                       check=True)  # fmt: skip
        for end, bridge in zip(ends, (data.bridge, scratch.bridge), strict=True):
            subprocess.run(["ip", "link", "set", end, "master", bridge, "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "link", "delete", ends[0]], check=False)
        lab.ssh("scratch1", f"ip addr del {address} dev {scratch.interface}")


@pytest.fixture(scope="module")
def drill_lab(lab_session: Any) -> Iterator[Any]:
    if not restic_binary(cache_dir()).exists():
        pytest.fail("restic is not built: run tools/components/restic.sh")
    lab = lab_session
    # a city's restore target is hardened: its SSH sessions copy files under umask 027
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab.state_dir))
        code, out, err = run_cli(
            "harden",
            "--site",
            str(lab.site_file),
            "--limit",
            "scratch1",
            "--controls",
            "CG-ACC-010",
            "-q",
        )
    assert code == 0, out + err
    login_umask = subprocess.run(
        ["ssh", "-F", str(lab.lab.ssh_config), "-o", "ControlPath=none", "scratch1", "umask"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert login_umask.stdout.strip() == "0027"
    # the product's own step (as `cityguard lab data` and the demo): database, trees, isolation
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab.state_dir))
        data_for_site(load_site(lab.site_file))
    # the recovery segment isolates scratch1: no route to the sources at all
    unreachable = subprocess.run(
        ["ssh", "-F", str(lab.lab.ssh_config), "scratch1", "ping -4 -c1 -W2 db1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unreachable.returncode != 0 and "unreachable" in unreachable.stderr, unreachable
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(lab.state_dir))
        env.setenv("CITYGUARD_RESTIC_PASSWORD", PASSWORD)
        yield lab


def evidence(lab: Any, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(lab.state_dir / "evidence.sqlite") as db:
        return db.execute(query, params).fetchall()


def snapshots(lab: Any, system: str) -> list[dict[str, Any]]:
    repo = lab.state_dir / "restic" / "repos" / system
    done = subprocess.run(
        [str(restic_binary(cache_dir())), "--repo", str(repo), "--json", "--no-cache", "snapshots"],
        capture_output=True,
        text=True,
        env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def backed_up(drill_lab: Any) -> Any:
    site = str(drill_lab.site_file)
    for system in ("citizen-portal", "document-registry"):
        code, out, err = run_cli("backup", "init", system, "--site", site)
        assert code == 0, out + err
        code, out, err = run_cli("backup", "run", system, "--site", site, "--format", "json")
        assert code == 0, out + err
    return drill_lab


def test_backup_records_snapshots_and_evidence(backed_up: Any) -> None:
    found = snapshots(backed_up, "citizen-portal")
    parts = sorted(t.split("=", 1)[1] for s in found for t in s["tags"] if t.startswith("cg-part="))
    assert parts == ["manifest", "portal-db", "portal-db-globals", "uploads"]
    rows = evidence(
        backed_up,
        "SELECT m.name, m.value FROM measurements m JOIN runs r ON r.id = m.run_id "
        "WHERE r.command = 'backup run citizen-portal' AND r.exit_code = 0",
    )
    values = dict(rows)
    assert values["bytes"] > 1_000_000  # a 100k-row dump and ~5 MB of uploads
    assert values["duration_s"] > 0
    steps = evidence(
        backed_up,
        "SELECT s.name, s.outcome, s.subject_kind FROM steps s JOIN runs r ON r.id = s.run_id "
        "WHERE r.command = 'backup run citizen-portal'",
    )
    assert ("backup portal-db", "pass", "system") in steps


def test_drill_restores_and_verifies(backed_up: Any) -> None:
    code, out, err = run_cli(
        "drill", "run", "citizen-portal", "--site", str(backed_up.site_file), "--format", "json"
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["result"] == "pass"
    assert [s["name"] for s in report["steps"]] == [
        "preflight",
        "snapshot",
        "check",
        "restore",
        "verify",
        "teardown",
    ]
    names = {m["name"]: m for m in report["measurements"]}
    assert names["rto_s"]["met"] is True and names["rpo_s"]["met"] is True
    assert names["bytes_restored"]["value"] > 1_000_000
    assert 0 < names["rpo_data_s"]["value"] < 3600 and names["rpo_data_s"]["met"] is True
    verified = {v["check"]: v for v in report["verifications"]}
    assert verified["verify[0]:row-counts"]["outcome"] == "pass"
    assert "citizens=30000" in verified["verify[0]:row-counts"]["observed"]
    assert verified["verify[3]:file-hashes"]["observed"] == "25 files match"
    run_dir = Path(
        evidence(backed_up, "SELECT artifacts_dir FROM runs WHERE id = ?", report["run_id"])[0][0]
    )
    assert (run_dir / "drill-report.md").read_text().startswith("# Restore drill")
    controls = evidence(
        backed_up,
        "SELECT control_id, outcome, subject_kind FROM control_results WHERE run_id = ?",
        report["run_id"],
    )
    assert sorted(controls) == [
        ("CG-DR-001", "pass", "system"),
        ("CG-DR-002", "pass", "system"),
        ("CG-DR-003", "pass", "system"),
        ("CG-DR-004", "pass", "system"),
    ]
    # teardown: nothing left on the scratch host
    left = backed_up.ssh(
        "scratch1", "ls /srv/cityguard-drill /var/tmp/cityguard-drill-citizen-portal 2>&1 || true"
    )
    assert "No such file" in left
    # the password is nowhere in what the runs wrote
    for path in Path(backed_up.state_dir, "runs").rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(errors="replace"), path
    assert PASSWORD not in (Path(backed_up.state_dir) / "evidence.sqlite").read_bytes().decode(
        "latin-1"
    )
    assert PASSWORD not in out + err


def test_document_registry_drill(backed_up: Any) -> None:
    code, out, err = run_cli(
        "drill", "run", "document-registry", "--site", str(backed_up.site_file)
    )
    assert code == 0, out + err
    assert "30 files match" in out or "PASS" in out
    # progress on stderr: each step and restored part against the RTO clock
    assert "preflight (" in err and " of RTO 30m00s)" in err, err
    assert "restore 1/" in err and "back so far" in err, err


def test_status_shows_backup_age_and_last_drill(backed_up: Any) -> None:
    code, out, err = run_cli(
        "drill", "status", "--site", str(backed_up.site_file), "--format", "json"
    )
    assert code == 0, out + err
    rows = {row["system"]: row for row in json.loads(out)}
    portal = rows["citizen-portal"]
    assert portal["last_drill_result"] == "pass" and portal["rpo_met"] is True
    assert 0 < portal["last_rto_s"] < portal["rto_target_s"]
    assert portal["next_drill"].startswith("Sun ")


def no_such_database(plan: dict[str, Any]) -> None:
    """pg_dump itself fails: nothing to count or query first."""
    plan["sources"][0].update(database="no_such_db", tables=[], freshness=None)
    plan["verify"] = [step for step in plan["verify"] if step["kind"] != "row-counts"]


def test_failing_pg_dump_fails_the_backup_and_leaves_no_snapshot(
    backed_up: Any, tmp_path: Path
) -> None:
    before = snapshots(backed_up, "citizen-portal")
    site = site_copy(
        tmp_path,
        backed_up,
        "citizen-portal",
        no_such_database,
    )
    code, out, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 3, out + err
    assert "Traceback" not in err
    assert "backing up portal-db (pg_dump of no_such_db on db1)" in err
    assert 'database "no_such_db" does not exist' in err
    after = snapshots(backed_up, "citizen-portal")
    new = [s for s in after if s["id"] not in {b["id"] for b in before}]
    assert not [
        s for s in new if "cg-part=portal-db" in s["tags"] or "cg-part=manifest" in s["tags"]
    ]


def test_restore_onto_a_source_host_is_refused(backed_up: Any, tmp_path: Path) -> None:
    site = site_copy(
        tmp_path, backed_up, "citizen-portal", lambda p: p["restore"].update(target="db1")
    )
    code, _, err = run_cli("drill", "run", "citizen-portal", "--site", str(site))
    assert code == 2
    assert "citizen-portal.yml:" in err and "restore.target: 'db1' is a source host" in err
    assert "Traceback" not in err


def test_target_that_reaches_the_sources_is_refused(backed_up: Any) -> None:
    with patched_into_the_data_segment(backed_up):
        code, out, err = run_cli(
            "drill", "run", "citizen-portal", "--site", str(backed_up.site_file)
        )
    assert code == 1, out + err
    # PostgreSQL listens on localhost only (Debian's default), sshd on every address
    assert "can reach source services: db1:22" in out
    assert "restore" not in [
        line.split()[1] for line in out.splitlines() if line.startswith("│ restore")
    ]


def test_wrong_verification_result_fails_and_says_which(backed_up: Any, tmp_path: Path) -> None:
    site = site_copy(
        tmp_path, backed_up, "citizen-portal", lambda p: p["verify"][1].update(expect="19999")
    )
    code, out, err = run_cli("drill", "run", "citizen-portal", "--site", str(site))
    assert code == 1, out + err
    assert "verify[1]:sql: got 20000, expected 19999" in out


def test_wrong_password_is_one_clear_error(backed_up: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGUARD_RESTIC_PASSWORD", "not-the-password")
    code, out, err = run_cli(
        "backup", "run", "document-registry", "--site", str(backed_up.site_file)
    )
    assert code == 3
    assert "wrong repository password" in err
    assert "Traceback" not in err and "not-the-password" not in out + err


def test_plan_problems_are_reported_all_at_once(backed_up: Any, tmp_path: Path) -> None:
    def edit(plan: dict[str, Any]) -> None:
        plan["targets"]["rpo"] = "soon"
        plan["sources"][0]["host"] = "db9"
        plan["schedule"]["backup"] = "every full moon"

    site = site_copy(tmp_path, backed_up, "citizen-portal", edit)
    code, _, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 2
    assert "targets.rpo: 'soon' is not a duration" in err
    assert "Traceback" not in err


# Faults through cityguard itself, each on a repository of its own so the others stay intact.


# Starts a command in a process group of its own and reaps it and every orphan it leaves, as a
# host's init does: a killed restic that nobody reaps stays a zombie whose PID still answers,
# and restic then takes its lock for a live one (this machine's PID 1 does not reap).
REAPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child = subprocess.Popen(sys.argv[1:], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


def own_repository(tmp_path: Path, lab: Any, name: str, **plan: Any) -> Path:
    """A copy of the site whose citizen-portal plan backs up into a new repository ``name``."""

    def edit(data: dict[str, Any]) -> None:
        data["repository"]["path"] = f"repos/{name}"
        data["targets"].update(plan.get("targets", {}))
        data["repository"].update(plan.get("repository", {}))

    site = site_copy(tmp_path, lab, "citizen-portal", edit)
    code, out, err = run_cli("backup", "init", "citizen-portal", "--site", str(site))
    assert code == 0, out + err
    return site


def repository_dir(lab: Any, name: str) -> Path:
    return Path(lab.state_dir) / "restic" / "repos" / name


def test_kill_9_during_a_backup_then_the_next_backup_and_drill_succeed(
    backed_up: Any, tmp_path: Path
) -> None:
    site = own_repository(tmp_path, backed_up, "portal-killed")
    code, out, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 0, out + err
    locks = repository_dir(backed_up, "portal-killed") / "locks"
    reaper = subprocess.Popen(
        [sys.executable, "-c", REAPER, CLI, "backup", "run", "citizen-portal", "--site", str(site)],
        env={**os.environ, "CITYGUARD_STATE": str(backed_up.state_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reaper.stdout is not None
    backup = int(reaper.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        while not lock_files(locks) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_files(locks), "the backup took no lock within 60 s"
    finally:
        os.killpg(backup, signal.SIGKILL)  # cityguard, restic and ssh together
        reaper.wait(30)
    assert lock_files(locks)  # the killed run's lock is left behind

    code, out, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 0, out + err
    code, out, err = run_cli("drill", "run", "citizen-portal", "--site", str(site))
    assert code == 0, out + err


def test_a_corrupted_pack_fails_the_drill_with_a_finding(backed_up: Any, tmp_path: Path) -> None:
    site = own_repository(
        tmp_path, backed_up, "portal-corrupt", repository={"check_subset": "100%"}
    )
    code, out, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 0, out + err
    for pack in (repository_dir(backed_up, "portal-corrupt") / "data").rglob("*"):
        if pack.is_file() and pack.stat().st_size > 4096:
            content = bytearray(pack.read_bytes())
            content[2048:2080] = b"\0" * 32
            pack.chmod(0o600)
            pack.write_bytes(bytes(content))

    code, out, err = run_cli(
        "drill", "run", "citizen-portal", "--site", str(site), "--format", "json"
    )
    assert code == 1, out + err
    report = json.loads(out)
    steps = {s["name"]: s["outcome"] for s in report["steps"]}
    assert steps["check"] == "fail", report["steps"]
    deviations = [finding["deviation"] for finding in report["findings"]]
    assert any("repository integrity check failed" in d for d in deviations), deviations
    assert "Traceback" not in err


def test_a_deleted_newest_backup_shows_as_an_rpo_breach(backed_up: Any, tmp_path: Path) -> None:
    # a target well above the newest set's age when the drill starts (the second backup, the
    # deletion and the drill's start take about 8 s here), so only the deletion breaches it
    site = own_repository(tmp_path, backed_up, "portal-forgotten", targets={"rpo": "20s"})
    code, out, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 0, out + err
    time.sleep(21)  # the first backup set is now older than the RPO target
    code, out, err = run_cli("backup", "run", "citizen-portal", "--site", str(site))
    assert code == 0, out + err
    repo = repository_dir(backed_up, "portal-forgotten")
    listed = json.loads(
        subprocess.run(
            [str(restic_binary(cache_dir())), "-r", str(repo), "snapshots", "--json"],
            env={**os.environ, "RESTIC_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    newest = max(s["time"] for s in listed)
    # an attacker (or a mistake) removes the newest backup set
    subprocess.run(
        [str(restic_binary(cache_dir())), "-r", str(repo), "forget"]
        + [s["id"] for s in listed if s["time"][:19] == newest[:19]],
        env={**os.environ, "RESTIC_PASSWORD": PASSWORD},
        capture_output=True,
        check=True,
    )

    code, out, err = run_cli(
        "drill", "run", "citizen-portal", "--site", str(site), "--format", "json"
    )
    assert code == 1, out + err
    rpo = {m["name"]: m for m in json.loads(out)["measurements"]}["rpo_s"]
    assert rpo["met"] is False and rpo["value"] > 20, rpo
