"""What every evidence store backend must do, written once and run against each backend.

A test module subclasses EvidenceStoreContract (its name does not start with "Test", so it is
only collected through a subclass) and provides four fixtures:

- ``store``: a freshly opened, empty store;
- ``reopen``: a callable opening another store on the same database/file;
- ``force_schema_version``: a callable recording a schema version directly in the database,
  bypassing the store, to simulate a store written by a newer cityguard;
- ``raw``: a callable running one SQL statement directly in the database (before any store
  opened it, for the upgrade test), written with "?" placeholders and "{float}" for the
  backend's double type, as MIGRATIONS are; it returns the rows, if any.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cityguard.core.records import (
    Change,
    CheckResult,
    Comparison,
    ControlResult,
    Measurement,
    Outcome,
    Step,
    Subject,
    SubjectKind,
    roll_up_all,
)
from cityguard.evidence import (
    SCHEMA_VERSION,
    EvidenceError,
    EvidenceStore,
    RunRecord,
    UnknownRun,
)
from cityguard.evidence.artifacts import Artifact
from cityguard.evidence.schema import MIGRATIONS

Raw = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)

CHECKS = [
    CheckResult(
        "ssh_root_login", "web1", ("CIS-5.2.8", "BSI-SYS.1.3.A2"), Outcome.PASS,
        observed="PermitRootLogin no", expected="PermitRootLogin no", duration_s=0.125,
    ),
    CheckResult(
        "ssh_ciphers", "web1", ("CIS-5.2.13",), Outcome.FAIL,
        observed="aes128-cbc,aes256-ctr", expected="no CBC ciphers", duration_s=1.5,
    ),
    CheckResult(
        "auditd_running", "web1", ("CIS-4.1.1",), Outcome.ERROR,
        reason="host unreachable: ssh timed out after 30s",
    ),
    CheckResult(
        "ipv6_router_ads", "db1", ("IPV6-3",), Outcome.NOT_APPLICABLE,
        reason="host has no IPv6 interface by design (ticket CITY-412)",
    ),
    CheckResult(
        "ssh_root_login", "db1", ("CIS-5.2.8", "BSI-SYS.1.3.A2"), Outcome.WAIVED,
        observed="PermitRootLogin prohibit-password", expected="PermitRootLogin no",
        reason="waiver W-17 until 2025-06-30", duration_s=0.1 + 0.2,
    ),
    CheckResult("motd_umlaut", "db1", ("ORG-1",), Outcome.PASS, observed="Grüße, Straße ✓"),
]  # fmt: skip


PARAMETERS = {
    "CG-SSH-003": {"max_auth_tries": 4, "ciphers": ["aes256-gcm@openssh.com"]},
    "CG-DR-001": {"rto_s": 3600, "note": "Größe ✓"},
}


def make_run(
    run_id: str,
    *,
    command: str = "check",
    started: datetime = T0,
    hosts: Sequence[str] = ("web1", "db1"),
) -> RunRecord:
    return RunRecord(
        id=run_id,
        site="musterstadt",
        command=command,
        operator="alice",
        started_at=started,
        content_commit="0123456789abcdef0123456789abcdef01234567-dirty",
        tool_versions={"cityguard": "0.1.0", "ansible-core": "2.19.1"},
        hosts=list(hosts),
        artifacts_dir="/var/lib/cityguard/musterstadt/artifacts/" + run_id,
        summary={"web1": {"ok": 12, "changed": 0, "failures": 1}, "note": "grün"},
        baseline="municipal-server",
        parameters=PARAMETERS,
    )


SYSTEM = Subject(SubjectKind.SYSTEM, "Fachverfahren Meldewesen")
REALM = Subject(SubjectKind.REALM, "buerger")
WEB1, DB1 = Subject.host("web1"), Subject.host("db1")

SUBJECT_CHECKS = [
    CheckResult(
        "drill::restore_verified", SYSTEM.name, ("CG-DR-001",), Outcome.PASS,
        observed="restored 1.2 GiB, checksums match", subject_kind=SubjectKind.SYSTEM,
    ),
    CheckResult(
        "eidas::loa_high", REALM.name, ("CG-EID-002",), Outcome.FAIL,
        observed="LoA substantial", expected="LoA high", subject_kind=SubjectKind.REALM,
    ),
    # same name as a host, other kind: a different subject
    CheckResult(
        "drill::restore_verified", "web1", ("CG-DR-001",), Outcome.ERROR,
        reason="backup not found", subject_kind=SubjectKind.SYSTEM,
    ),
    CheckResult("ssh_root_login", "web1", ("CG-DR-001",), Outcome.PASS),
]  # fmt: skip

STEPS = [
    Step("preflight", SYSTEM, T0, T0 + timedelta(seconds=4, microseconds=7), Outcome.PASS),
    Step(
        "restore", SYSTEM, T0 + timedelta(seconds=5), T0 + timedelta(minutes=3, seconds=32),
        Outcome.PASS, detail="snapshot 2025-03-13T22:00 from borg repository 'nightly'",
    ),
    Step(
        "verify", SYSTEM,
        (T0 + timedelta(minutes=4)).astimezone(timezone(timedelta(hours=1))),
        T0 + timedelta(minutes=4, seconds=1), Outcome.FAIL, detail="2 of 40 checks failed",
    ),
    Step("batch 1", Subject(SubjectKind.SEGMENT, "rathaus-lan"), T0, T0, Outcome.ERROR),
]  # fmt: skip

MEASUREMENTS = [
    Measurement("rto_s", 212, "s", SYSTEM, target=3600, comparison=Comparison.AT_MOST),
    Measurement("bytes_restored", 1288490188, "bytes", SYSTEM),
    Measurement("rpo_s", 0.1 + 0.2, "s", SYSTEM, target=0.25, comparison=Comparison.AT_MOST),
    Measurement("reachable_share", 97.5, "%", Subject(SubjectKind.PREFIX, "2001:db8:10::/48"),
                target=99, comparison=Comparison.AT_LEAST),
    Measurement("idp_count", 3, "count", Subject(SubjectKind.IDENTITY_PROVIDER, "bund-id"),
                target=3, comparison=Comparison.EQUAL),
    Measurement("latency_ms", 12.345678901234567, "ms", Subject(SubjectKind.SITE, "musterstadt"),
                comparison=Comparison.AT_MOST),
]  # fmt: skip

DIFF = "--- before: /etc/ssh/sshd_config.d/cityguard.conf\n+++ after\n@@ -1 +1 @@\n-A\n+Grüße"
CHANGES = [
    Change(WEB1, "CG-SSH-001", "ssh : Write the cityguard sshd drop-in", DIFF),
    Change(WEB1, "CG-SSH-015", "ssh : Write the cityguard sshd drop-in", DIFF),
    Change(DB1, None, "ssh : restart sshd"),
    Change(REALM, "CG-EID-002", "set LoA high on the broker flow", "loa: substantial -> high"),
]

ARTIFACTS = [
    Artifact("inventory.yml", "a" * 64, 812, "application/yaml"),
    Artifact("artifacts/20250314T092653Z-1a2b3c4d/stdout", "0123456789abcdef" * 4, 0,
             "text/plain"),
    Artifact("artifacts/20250314T092653Z-1a2b3c4d/job_events/1-x.json", "f" * 64, 5 * 2**31,
             "application/json"),
]  # fmt: skip


def checks_in_order_of(controls: list[ControlResult]) -> list[CheckResult]:
    """Checks as a store first meets them when given only controls: each once, in order."""
    seen: dict[CheckResult, None] = {}
    for control in controls:
        seen.update(dict.fromkeys(control.checks))
    return list(seen)


class EvidenceStoreContract:
    def test_run_round_trip(self, store: EvidenceStore) -> None:
        run = make_run("r1")
        store.start_run(run)
        loaded = store.get_run("r1")
        assert loaded == run
        assert loaded.finished_at is None and loaded.exit_code is None
        assert loaded.started_at.tzinfo is not None
        assert loaded.started_at.utcoffset() == timedelta(0)

    def test_times_are_normalised_to_utc(self, store: EvidenceStore) -> None:
        local = T0.astimezone(timezone(timedelta(hours=2)))
        store.start_run(make_run("r1", started=local))
        loaded = store.get_run("r1")
        assert loaded.started_at == T0
        assert loaded.started_at.isoformat() == "2025-03-14T09:26:53.589793+00:00"

    def test_finish_run(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        end = T0 + timedelta(minutes=7, microseconds=3)
        store.finish_run("r1", 3, {"web1": {"unreachable": 1}}, finished_at=end)
        loaded = store.get_run("r1")
        assert loaded.exit_code == 3
        assert loaded.finished_at == end
        assert loaded.summary == {"web1": {"unreachable": 1}}

    def test_finish_without_summary_keeps_summary_and_stamps_now(
        self, store: EvidenceStore
    ) -> None:
        store.start_run(make_run("r1"))
        before = datetime.now(UTC)
        store.finish_run("r1", 0)
        loaded = store.get_run("r1")
        assert loaded.summary == make_run("r1").summary
        assert loaded.finished_at is not None
        assert before <= loaded.finished_at <= datetime.now(UTC)

    def test_finished_run_is_closed(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        store.finish_run("r1", 0)
        with pytest.raises(EvidenceError, match="finished"):
            store.finish_run("r1", 1)
        with pytest.raises(EvidenceError, match="finished"):
            store.add_check_results("r1", CHECKS[:1])
        late: list[Callable[[], object]] = [
            lambda: store.add_steps("r1", STEPS),
            lambda: store.add_measurements("r1", MEASUREMENTS),
            lambda: store.add_changes("r1", CHANGES),
            lambda: store.add_artifacts("r1", ARTIFACTS),
        ]
        for call in late:
            with pytest.raises(EvidenceError, match="finished"):
                call()
        assert store.get_run("r1").exit_code == 0
        assert store.check_results("r1") == []
        assert store.steps("r1") == [] and store.measurements("r1") == []
        assert store.changes("r1") == [] and store.artifacts("r1") == []

    def test_duplicate_run_refused(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        with pytest.raises(EvidenceError, match="already recorded"):
            store.start_run(make_run("r1", command="drill"))
        assert store.get_run("r1").command == "check"

    def test_check_results_round_trip(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        store.add_check_results("r1", CHECKS[:2])
        store.add_check_results("r1", iter(CHECKS[2:]))
        loaded = store.check_results("r1")
        assert loaded == CHECKS
        na = loaded[3]
        assert na.outcome is Outcome.NOT_APPLICABLE
        assert na.reason == "host has no IPv6 interface by design (ticket CITY-412)"
        assert loaded[1].observed == "aes128-cbc,aes256-ctr"
        assert loaded[1].expected == "no CBC ciphers"
        assert loaded[4].duration_s == 0.1 + 0.2

    def test_control_results_round_trip(self, store: EvidenceStore) -> None:
        controls = roll_up_all(CHECKS)
        store.start_run(make_run("r1"))
        store.add_check_results("r1", CHECKS)
        store.add_control_results("r1", controls)
        loaded = store.control_results("r1")
        assert loaded == controls
        by_key = {(c.control_id, c.host): c for c in loaded}
        assert by_key[("CIS-5.2.8", "web1")].checks == (CHECKS[0],)
        assert by_key[("CIS-5.2.13", "web1")].outcome is Outcome.FAIL
        assert by_key[("CIS-5.2.13", "web1")].observed == "ssh_ciphers: aes128-cbc,aes256-ctr"
        assert by_key[("IPV6-3", "db1")].outcome is Outcome.NOT_APPLICABLE
        assert by_key[("IPV6-3", "db1")].reason == CHECKS[3].reason
        # the controls' checks were linked to the stored ones, not stored a second time
        assert store.check_results("r1") == CHECKS

    def test_controls_alone_bring_their_checks(self, store: EvidenceStore) -> None:
        orphan = ControlResult("ORG-9", "web1", Outcome.ERROR, (), "no check ran for this control")
        controls = [*roll_up_all(CHECKS[:2]), orphan]
        store.start_run(make_run("r1"))
        store.add_control_results("r1", controls)
        assert store.control_results("r1") == controls
        assert store.check_results("r1") == checks_in_order_of(controls)
        assert len(store.check_results("r1")) == 2

    def test_runs_do_not_mix(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        store.start_run(make_run("r2", started=T0 + timedelta(seconds=1)))
        store.add_check_results("r1", CHECKS[:3])
        store.add_control_results("r2", roll_up_all(CHECKS[3:]))
        assert store.check_results("r1") == CHECKS[:3]
        assert store.control_results("r1") == []
        assert store.check_results("r2") == checks_in_order_of(roll_up_all(CHECKS[3:]))
        assert set(store.check_results("r2")) == set(CHECKS[3:])
        assert store.control_results("r2") == roll_up_all(CHECKS[3:])

    def test_list_runs_newest_first(self, store: EvidenceStore) -> None:
        hours = {"a": 2, "b": 0, "c": 5, "d": 1, "e": 3}
        commands = {"a": "check", "b": "check", "c": "drill", "d": "harden --check", "e": "check"}
        for run_id, hour in hours.items():
            started = T0 + timedelta(hours=hour)
            store.start_run(make_run(run_id, command=commands[run_id], started=started))
        assert [r.id for r in store.list_runs()] == ["c", "e", "a", "d", "b"]
        assert [r.id for r in store.list_runs(limit=2)] == ["c", "e"]
        assert [r.id for r in store.list_runs(command="check")] == ["e", "a", "b"]
        assert [r.id for r in store.list_runs(limit=1, command="check")] == ["e"]
        assert store.list_runs(command="harden") == []
        with pytest.raises(ValueError):
            store.list_runs(limit=0)

    def test_latest_run(self, store: EvidenceStore) -> None:
        assert store.latest_run("check") is None
        store.start_run(make_run("old", started=T0))
        store.start_run(make_run("new", started=T0 + timedelta(microseconds=1)))
        store.start_run(make_run("drill", command="drill", started=T0 + timedelta(days=1)))
        latest = store.latest_run("check")
        assert latest is not None and latest.id == "new"
        assert latest == make_run("new", started=T0 + timedelta(microseconds=1))
        assert store.latest_run("harden --check") is None

    def test_unknown_run(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        calls: list[Callable[[], object]] = [
            lambda: store.get_run("nope"),
            lambda: store.check_results("nope"),
            lambda: store.control_results("nope"),
            lambda: store.add_check_results("nope", CHECKS),
            lambda: store.add_control_results("nope", roll_up_all(CHECKS)),
            lambda: store.finish_run("nope", 0),
            lambda: store.steps("nope"),
            lambda: store.measurements("nope"),
            lambda: store.changes("nope"),
            lambda: store.artifacts("nope"),
            lambda: store.add_steps("nope", STEPS),
            lambda: store.add_measurements("nope", MEASUREMENTS),
            lambda: store.add_changes("nope", CHANGES),
            lambda: store.add_artifacts("nope", ARTIFACTS),
        ]
        for call in calls:
            with pytest.raises(UnknownRun) as info:
                call()
            assert isinstance(info.value, KeyError)
            assert isinstance(info.value, EvidenceError)
            assert info.value.run_id == "nope"
            assert str(info.value) == "no evidence run with id 'nope'"
        assert store.check_results("r1") == []
        assert store.steps("r1") == [] and store.artifacts("r1") == []

    def test_schema_version(self, store: EvidenceStore) -> None:
        assert SCHEMA_VERSION == 2
        assert store.schema_version() == SCHEMA_VERSION

    def test_newer_schema_refused(
        self,
        store: EvidenceStore,
        reopen: Callable[[], EvidenceStore],
        force_schema_version: Callable[[int], None],
    ) -> None:
        store.close()
        force_schema_version(SCHEMA_VERSION + 41)
        with pytest.raises(EvidenceError) as info:
            reopen()
        assert str(info.value) == (
            f"evidence store schema version {SCHEMA_VERSION + 41} is newer than this"
            f" cityguard supports ({SCHEMA_VERSION})"
        )

    def test_reopen_keeps_data_and_migrations_are_idempotent(
        self, store: EvidenceStore, reopen: Callable[[], EvidenceStore]
    ) -> None:
        store.start_run(make_run("r1"))
        store.add_check_results("r1", CHECKS)
        store.add_control_results("r1", roll_up_all(CHECKS))
        store.finish_run("r1", 1, finished_at=T0 + timedelta(hours=1))
        store.close()
        for _ in range(3):  # each open runs the migration step again; it must be a no-op
            with reopen() as again:
                assert again.schema_version() == SCHEMA_VERSION
                loaded = again.get_run("r1")
                assert loaded.exit_code == 1
                assert loaded.finished_at == T0 + timedelta(hours=1)
                assert again.check_results("r1") == CHECKS
                assert again.control_results("r1") == roll_up_all(CHECKS)
                assert [r.id for r in again.list_runs()] == ["r1"]

    def test_closed_store_refuses(self, store: EvidenceStore) -> None:
        with store as same:
            assert same is store
        with pytest.raises(EvidenceError, match="closed"):
            store.list_runs()
        store.close()  # closing twice is harmless

    def test_failed_write_leaves_nothing_behind(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        # the second check cannot be serialised: the whole batch must roll back, first included
        broken = CheckResult("weird", "web1", (object(),), Outcome.PASS)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            store.add_check_results("r1", [CHECKS[0], broken])
        assert store.check_results("r1") == []
        store.add_check_results("r1", CHECKS[1:2])
        assert store.check_results("r1") == CHECKS[1:2]

    # -- subjects, steps, measurements, changes, artifacts ----------------------------------

    def test_baseline_and_parameters_round_trip(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        loaded = store.get_run("r1")
        assert loaded.baseline == "municipal-server"
        assert loaded.parameters == PARAMETERS
        unknown = make_run("r2")
        unknown.baseline, unknown.parameters = None, None
        store.start_run(unknown)
        assert store.get_run("r2") == unknown
        empty = make_run("r3")
        empty.parameters = {}
        store.start_run(empty)
        assert store.get_run("r3").parameters == {}  # none used, not "unknown"

    def test_results_about_typed_subjects(self, store: EvidenceStore) -> None:
        controls = roll_up_all(SUBJECT_CHECKS)
        store.start_run(make_run("r1", command="drill"))
        store.add_check_results("r1", SUBJECT_CHECKS)
        store.add_control_results("r1", controls)
        assert store.check_results("r1") == SUBJECT_CHECKS
        loaded = store.control_results("r1")
        assert loaded == controls
        by_subject = {(c.control_id, c.subject): c for c in loaded}
        assert len(by_subject) == 4  # system web1 and host web1 are kept apart
        assert by_subject[("CG-DR-001", SYSTEM)].outcome is Outcome.PASS
        assert by_subject[("CG-DR-001", Subject(SubjectKind.SYSTEM, "web1"))].outcome is (
            Outcome.ERROR
        )
        assert by_subject[("CG-DR-001", WEB1)].checks == (SUBJECT_CHECKS[3],)
        assert by_subject[("CG-EID-002", REALM)].subject_kind is SubjectKind.REALM
        assert {c.subject_kind for c in store.check_results("r1")} == {
            SubjectKind.SYSTEM, SubjectKind.REALM, SubjectKind.HOST,
        }  # fmt: skip

    def test_steps_round_trip(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1", command="drill"))
        store.add_steps("r1", STEPS[:2])
        store.add_steps("r1", iter(STEPS[2:]))
        loaded = store.steps("r1")
        assert loaded == STEPS
        assert loaded[0].finished_at == T0 + timedelta(seconds=4, microseconds=7)
        assert loaded[1].duration_s == 207.0
        assert loaded[2].started_at.utcoffset() == timedelta(0)
        assert loaded[2].started_at == T0 + timedelta(minutes=4)
        assert loaded[3].detail is None and loaded[3].duration_s == 0.0

    def test_measurements_round_trip(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1", command="drill"))
        store.add_measurements("r1", MEASUREMENTS)
        loaded = store.measurements("r1")
        assert loaded == MEASUREMENTS
        assert [type(m.value) for m in loaded] == [float] * len(MEASUREMENTS)
        assert loaded[1].value == 1288490188.0
        assert loaded[2].value == 0.1 + 0.2  # a double keeps every bit
        assert loaded[5].value == 12.345678901234567
        assert [m.met for m in loaded] == [True, None, False, False, True, None]
        assert loaded[5].comparison is Comparison.AT_MOST and loaded[5].target is None

    def test_changes_round_trip(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1", command="harden"))
        store.add_changes("r1", CHANGES[:1])
        store.add_changes("r1", CHANGES[1:])
        loaded = store.changes("r1")
        assert loaded == CHANGES
        assert loaded[0].diff is not None and loaded[0].diff.endswith("+Grüße")
        assert loaded[2].control_id is None and loaded[2].diff is None

    def test_artifacts_round_trip(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1", command="harden"))
        store.add_artifacts("r1", ARTIFACTS)
        loaded = store.artifacts("r1")
        assert loaded == sorted(ARTIFACTS, key=lambda a: a.path)
        assert max(a.size for a in loaded) == 5 * 2**31  # beyond a 32-bit integer

    def test_an_artifact_is_recorded_once(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        again = Artifact(ARTIFACTS[0].path, "b" * 64, 1, "application/yaml")
        with pytest.raises(EvidenceError):
            store.add_artifacts("r1", [*ARTIFACTS[1:], again, ARTIFACTS[0]])
        assert store.artifacts("r1") == []  # the batch is stored whole or not at all
        store.add_artifacts("r1", ARTIFACTS[:1])
        with pytest.raises(EvidenceError):
            store.add_artifacts("r1", [again])
        assert store.artifacts("r1") == ARTIFACTS[:1]

    def test_records_of_runs_do_not_mix(self, store: EvidenceStore) -> None:
        store.start_run(make_run("r1"))
        store.start_run(make_run("r2"))
        store.add_steps("r1", STEPS[:1])
        store.add_steps("r2", STEPS[1:])
        store.add_measurements("r2", MEASUREMENTS[:1])
        store.add_changes("r1", CHANGES[:2])
        store.add_artifacts("r2", ARTIFACTS[:1])
        store.add_artifacts("r1", ARTIFACTS)  # the same relative path in another run is fine
        assert store.steps("r1") == STEPS[:1] and store.steps("r2") == STEPS[1:]
        assert store.measurements("r1") == [] and store.measurements("r2") == MEASUREMENTS[:1]
        assert store.changes("r1") == CHANGES[:2] and store.changes("r2") == []
        assert store.artifacts("r2") == ARTIFACTS[:1] and len(store.artifacts("r1")) == 3

    # -- across runs -----------------------------------------------------------------------

    def _three_checks(self, store: EvidenceStore) -> None:
        """Runs a (oldest), b, c (newest) checking CG-SSH-001 on web1 and db1; b also a system."""
        for offset, run_id in enumerate(["a", "b", "c"]):
            store.start_run(make_run(run_id, started=T0 + timedelta(days=offset)))
        outcome = {"a": Outcome.FAIL, "b": Outcome.PASS, "c": Outcome.ERROR}
        for run_id in ["c", "a", "b"]:  # added out of time order on purpose
            checks = [
                CheckResult("ssh_root_login", host, ("CG-SSH-001",), outcome[run_id])
                for host in ("web1", "db1")
            ]
            if run_id == "b":
                checks.append(SUBJECT_CHECKS[0])
            store.add_control_results(run_id, roll_up_all(checks))

    def test_results_for_control(self, store: EvidenceStore) -> None:
        self._three_checks(store)
        found = store.results_for_control("CG-SSH-001")
        assert [(r.run_id, r.result.host) for r in found] == [
            ("c", "db1"), ("c", "web1"), ("b", "db1"), ("b", "web1"), ("a", "db1"), ("a", "web1"),
        ]  # fmt: skip
        assert [r.run_started_at for r in found[::2]] == [
            T0 + timedelta(days=2), T0 + timedelta(days=1), T0,
        ]  # fmt: skip
        assert {r.command for r in found} == {"check"}
        web1 = store.results_for_control("CG-SSH-001", WEB1)
        assert [(r.run_id, r.result.outcome) for r in web1] == [
            ("c", Outcome.ERROR), ("b", Outcome.PASS), ("a", Outcome.FAIL),
        ]  # fmt: skip
        assert web1[2].result.checks == (
            CheckResult("ssh_root_login", "web1", ("CG-SSH-001",), Outcome.FAIL),
        )
        assert [r.run_id for r in store.results_for_control("CG-SSH-001", WEB1, limit=2)] == [
            "c", "b",
        ]  # fmt: skip
        assert store.results_for_control("CG-SSH-001", Subject(SubjectKind.SYSTEM, "web1")) == []
        (drill,) = store.results_for_control("CG-DR-001")
        assert drill.run_id == "b" and drill.result.subject == SYSTEM
        assert drill.result.checks == (SUBJECT_CHECKS[0],)
        assert store.results_for_control("CG-NOPE-001") == []
        with pytest.raises(ValueError):
            store.results_for_control("CG-SSH-001", limit=0)

    def test_results_for_subject(self, store: EvidenceStore) -> None:
        self._three_checks(store)
        web1 = store.results_for_subject(SubjectKind.HOST, "web1")
        assert [(r.run_id, r.result.control_id) for r in web1] == [
            ("c", "CG-SSH-001"), ("b", "CG-SSH-001"), ("a", "CG-SSH-001"),
        ]  # fmt: skip
        (system,) = store.results_for_subject("system", SYSTEM.name)
        assert system.result == roll_up_all([SUBJECT_CHECKS[0]])[0]
        assert store.results_for_subject("realm", "web1") == []
        assert [r.run_id for r in store.results_for_subject("host", "db1", limit=1)] == ["c"]
        with pytest.raises(ValueError):
            store.results_for_subject("planet", "earth")

    def test_measurement_series(self, store: EvidenceStore) -> None:
        other = Subject(SubjectKind.SYSTEM, "Finanzwesen")
        values = {"d2": 180.0, "d0": 212.0, "d1": 3900.5}  # keys: started T0 + n days
        for run_id, value in values.items():
            store.start_run(
                make_run(run_id, command="drill", started=T0 + timedelta(days=int(run_id[1])))
            )
            store.add_measurements(
                run_id,
                [
                    Measurement("rto_s", value, "s", SYSTEM, 3600, Comparison.AT_MOST),
                    Measurement("rto_s", value * 2, "s", other, 3600, Comparison.AT_MOST),
                    Measurement("bytes_restored", 1e9, "bytes", SYSTEM),
                ],
            )
        series = store.measurement_series("rto_s", SYSTEM)
        assert [(p.run_id, p.measurement.value) for p in series] == [
            ("d0", 212.0), ("d1", 3900.5), ("d2", 180.0),
        ]  # oldest first, as a trend is drawn  # fmt: skip
        assert [p.measurement.met for p in series] == [True, False, True]
        assert series[0].run_started_at == T0 and series[0].command == "drill"
        both = store.measurement_series("rto_s")
        assert [(p.run_id, p.measurement.subject.name) for p in both] == [
            ("d0", SYSTEM.name), ("d0", "Finanzwesen"), ("d1", SYSTEM.name),
            ("d1", "Finanzwesen"), ("d2", SYSTEM.name), ("d2", "Finanzwesen"),
        ]  # within a run in the order added  # fmt: skip
        latest = store.measurement_series("rto_s", SYSTEM, limit=2)
        assert [p.run_id for p in latest] == ["d1", "d2"]  # the latest two, oldest first
        assert store.measurement_series("rto_s", Subject(SubjectKind.REALM, "x")) == []
        assert len(store.measurement_series("bytes_restored")) == 3
        with pytest.raises(ValueError):
            store.measurement_series("rto_s", limit=0)

    def test_last_runs(self, store: EvidenceStore) -> None:
        day = timedelta(days=1)
        store.start_run(make_run("h1", command="harden", started=T0))
        store.start_run(make_run("h2", command="harden", started=T0 + day, hosts=["web1"]))
        store.start_run(make_run("c1", command="check", started=T0 + 2 * day, hosts=["db1"]))
        store.add_control_results("c1", roll_up_all(CHECKS[3:]))
        store.start_run(make_run("d1", command="drill", started=T0 + 3 * day, hosts=[]))
        store.add_steps("d1", STEPS[:1])
        store.add_measurements("d1", MEASUREMENTS[3:4])
        store.add_changes("d1", CHANGES[3:])
        store.finish_run("d1", 1)
        store.start_run(make_run("d2", command="drill", started=T0 + 4 * day, hosts=[]))
        store.add_steps("d2", STEPS[3:])  # still running: the latest drill of its segment
        found = [(last.command, str(last.subject), last.run.id) for last in store.last_runs()]
        assert found == [
            ("check", "host:db1", "c1"),
            ("drill", "identity-provider:bund-id", "d1")
            if False
            else ("drill", "prefix:2001:db8:10::/48", "d1"),
            ("drill", "realm:buerger", "d1"),
            ("drill", "segment:rathaus-lan", "d2"),
            ("drill", "system:Fachverfahren Meldewesen", "d1"),
            ("harden", "host:db1", "h1"),
            ("harden", "host:web1", "h2"),
        ]
        drills = store.last_runs(command="drill")
        assert {last.command for last in drills} == {"drill"} and len(drills) == 4
        assert drills[0].run == store.get_run("d1") and drills[0].run.exit_code == 1
        assert store.last_runs(command="lab up") == []

    # -- upgrading a store written by schema-1 code ----------------------------------------

    def test_schema_1_store_upgrades_in_place(
        self, reopen: Callable[[], EvidenceStore], raw: Raw
    ) -> None:
        """A store at schema 1, created and filled by the SQL schema-1 code ran, upgrades on
        open: old runs and results read back as they were (about hosts), new records fit."""
        raw(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
            [],
        )
        for statement in MIGRATIONS[0]:
            raw(statement, [])
        raw("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", [1, "x"])
        old_runs = [
            # schema 1's runs columns, as its run_to_row wrote them
            ["old-check", "musterstadt", "check", "alice", "2025-03-14T09:26:53.589793+00:00",
             "2025-03-14T09:30:00.000000+00:00", 1, "0123abc", '{"cityguard": "0.1.0"}',
             '["web1", "db1"]', "/state/runs/a", '{"host_problems": {}}'],
            ["old-harden", "musterstadt", "harden", "bob", "2025-03-13T08:00:00.000000+00:00",
             "2025-03-13T08:05:00.000000+00:00", 0, None, "{}", '["web1", "db2"]', None,
             '{"changes": [{"host": "web1", "task": "x"}], "rc": 0}'],
        ]  # fmt: skip
        for row in old_runs:
            raw(
                "INSERT INTO runs (id, site, command, operator, started_at, finished_at,"
                " exit_code, content_commit, tool_versions, hosts, artifacts_dir, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        for seq, check in enumerate(CHECKS):
            raw(
                "INSERT INTO check_results (id, run_id, seq, check_id, host, controls, outcome,"
                " observed, expected, reason, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [f"k{seq}", "old-check", seq, check.check_id, check.host,
                 json.dumps(list(check.controls)), check.outcome.value, check.observed,
                 check.expected, check.reason, check.duration_s],
            )  # fmt: skip
        controls = roll_up_all(CHECKS)
        for seq, control in enumerate(controls):
            raw(
                "INSERT INTO control_results (id, run_id, seq, control_id, host, outcome, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [f"c{seq}", "old-check", seq, control.control_id, control.host,
                 control.outcome.value, control.reason],
            )  # fmt: skip
            for position, check in enumerate(control.checks):
                raw(
                    "INSERT INTO control_checks (control_result_id, position, check_result_id)"
                    " VALUES (?, ?, ?)",
                    [f"c{seq}", position, f"k{CHECKS.index(check)}"],
                )

        with reopen() as store:
            assert store.schema_version() == SCHEMA_VERSION
            old = store.get_run("old-check")
            assert old == RunRecord(
                id="old-check", site="musterstadt", command="check", operator="alice",
                started_at=T0, finished_at=datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
                exit_code=1, content_commit="0123abc", tool_versions={"cityguard": "0.1.0"},
                hosts=["web1", "db1"], artifacts_dir="/state/runs/a",
                summary={"host_problems": {}},
            )  # fmt: skip
            assert old.baseline is None and old.parameters is None  # not known, not empty
            assert store.get_run("old-harden").summary["changes"] == [{"host": "web1", "task": "x"}]
            assert store.check_results("old-check") == CHECKS
            assert store.control_results("old-check") == controls
            assert {c.subject_kind for c in store.control_results("old-check")} == {
                SubjectKind.HOST
            }
            assert [r.run_id for r in store.results_for_subject("host", "web1")][:1] == [
                "old-check"
            ]
            assert [r.result for r in store.results_for_control("CIS-5.2.8")] == [
                c for c in controls if c.control_id == "CIS-5.2.8"
            ]
            # every old run's hosts are its subjects, also a run without any result
            lasts = {(last.command, last.subject.name): last.run.id for last in store.last_runs()}
            assert lasts == {
                ("check", "web1"): "old-check",
                ("check", "db1"): "old-check",
                ("harden", "web1"): "old-harden",
                ("harden", "db2"): "old-harden",
            }
            assert store.steps("old-check") == [] and store.artifacts("old-harden") == []
            with pytest.raises(EvidenceError, match="finished"):
                store.add_steps("old-check", STEPS)
            store.start_run(make_run("new", command="drill", started=T0 + timedelta(days=1)))
            store.add_check_results("new", SUBJECT_CHECKS)
            store.add_control_results("new", roll_up_all(SUBJECT_CHECKS))
            store.add_steps("new", STEPS)
            store.add_measurements("new", MEASUREMENTS)
            store.add_changes("new", CHANGES)
            store.add_artifacts("new", ARTIFACTS)
            store.finish_run("new", 0)
            assert store.get_run("new").baseline == "municipal-server"
            assert store.control_results("new") == roll_up_all(SUBJECT_CHECKS)
            assert store.steps("new") == STEPS and store.changes("new") == CHANGES
        with reopen() as again:  # opening the upgraded store again changes nothing
            assert again.schema_version() == SCHEMA_VERSION
            assert again.control_results("old-check") == controls
            # the old runs' 4, the new run's 2 hosts and 7 other subjects
            assert len(again.last_runs()) == 4 + 9
