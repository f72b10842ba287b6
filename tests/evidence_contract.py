"""What every evidence store backend must do, written once and run against each backend.

A test module subclasses EvidenceStoreContract (its name does not start with "Test", so it is
only collected through a subclass) and provides three fixtures:

- ``store``: a freshly opened, empty store;
- ``reopen``: a callable opening another store on the same database/file;
- ``force_schema_version``: a callable recording a schema version directly in the database,
  bypassing the store, to simulate a store written by a newer cityguard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cityguard.core.records import CheckResult, ControlResult, Outcome, roll_up_all
from cityguard.evidence import (
    SCHEMA_VERSION,
    EvidenceError,
    EvidenceStore,
    RunRecord,
    UnknownRun,
)

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


def make_run(run_id: str, *, command: str = "check", started: datetime = T0) -> RunRecord:
    return RunRecord(
        id=run_id,
        site="musterstadt",
        command=command,
        operator="alice",
        started_at=started,
        content_commit="0123456789abcdef0123456789abcdef01234567-dirty",
        tool_versions={"cityguard": "0.1.0", "ansible-core": "2.19.1"},
        hosts=["web1", "db1"],
        artifacts_dir="/var/lib/cityguard/musterstadt/artifacts/" + run_id,
        summary={"web1": {"ok": 12, "changed": 0, "failures": 1}, "note": "grün"},
    )


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
        assert store.get_run("r1").exit_code == 0
        assert store.check_results("r1") == []

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
        ]
        for call in calls:
            with pytest.raises(UnknownRun) as info:
                call()
            assert isinstance(info.value, KeyError)
            assert isinstance(info.value, EvidenceError)
            assert info.value.run_id == "nope"
            assert str(info.value) == "no evidence run with id 'nope'"
        assert store.check_results("r1") == []

    def test_schema_version(self, store: EvidenceStore) -> None:
        assert SCHEMA_VERSION == 1
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
