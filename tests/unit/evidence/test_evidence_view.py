"""How `evidence show` renders each kind of record; recorded text is never taken for markup."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from rich.console import Console

from cityguard.core.records import (
    Change,
    CheckResult,
    Comparison,
    Measurement,
    Outcome,
    Step,
    Subject,
    SubjectKind,
    roll_up_all,
)
from cityguard.evidence import RunRecord
from cityguard.evidence.artifacts import Artifact
from cityguard.evidence.view import RunEvidence, check_summary, run_evidence_json, show_run
from cityguard.verify.runner import HostRun

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
SYSTEM = Subject(SubjectKind.SYSTEM, "Meldewesen")


def drill_evidence() -> RunEvidence:
    run = RunRecord(
        "d1", "musterstadt", "drill", "alice", T0, T0 + timedelta(minutes=5), 1,
        content_commit="abc123", hosts=[], baseline="dr-basis", parameters={"CG-DR-001": {}},
    )  # fmt: skip
    checks = [
        CheckResult(
            "drill::verify", SYSTEM.name, ("CG-DR-001",), Outcome.FAIL,
            observed="2 of 40 [red]checks[/red] failed", subject_kind=SubjectKind.SYSTEM,
        )
    ]  # fmt: skip
    return RunEvidence(
        run=run,
        controls=roll_up_all(checks),
        steps=[
            Step("restore", SYSTEM, T0, T0 + timedelta(seconds=212), Outcome.PASS),
            Step("verify", SYSTEM, T0, T0 + timedelta(seconds=3), Outcome.FAIL, "[/] broken"),
        ],
        measurements=[
            Measurement("rto_s", 212, "s", SYSTEM, 3600, Comparison.AT_MOST),
            Measurement("rpo_s", 7200, "s", SYSTEM, 3600, Comparison.AT_MOST),
            Measurement("bytes_restored", 1288490188, "bytes", SYSTEM),
        ],
        changes=[Change(SYSTEM, "CG-DR-001", "restored the test copy", "+ restored")],
        artifacts=[Artifact("drill/report.json", "ab" * 32, 3 * 2**20, "application/json")],
    )


def render(evidence: RunEvidence, *, diffs: bool = False) -> str:
    out = io.StringIO()
    show_run(Console(file=out, width=250), evidence, diffs=diffs)
    return out.getvalue()


def test_every_kind_of_record_is_shown() -> None:
    shown = render(drill_evidence())
    for expected in (
        "drill", "dr-basis", "abc123", "300.0 s",  # the header
        "system:Meldewesen", "CG-DR-001", "2 of 40 [red]checks[/red] failed",  # controls
        "restore", "212.0 s", "[/] broken",  # steps
        "212 s", "≤ 3600 s", "not met", "1.28849e+09 bytes",  # measurements
        "restored the test copy", "1 lines",  # changes
        "drill/report.json", "3.0 MiB", "abababababababab",  # artifacts
    ):  # fmt: skip
        assert expected in shown, expected
    assert "+ restored" not in shown
    assert "+ restored" in render(drill_evidence(), diffs=True)


def test_json_holds_all_of_it() -> None:
    document = json.loads(run_evidence_json(drill_evidence()))
    assert document["run"]["started_at"] == "2025-03-14T09:00:00.000000+00:00"
    assert document["run"]["parameters"] == {"CG-DR-001": {}}
    assert document["controls"][0]["subject_kind"] == "system"
    assert [m["met"] for m in document["measurements"]] == [True, False, None]
    assert document["steps"][0]["duration_s"] == 212.0
    assert document["changes"][0]["diff"] == "+ restored"
    assert document["artifacts"][0]["sha256"] == "ab" * 32


def test_a_run_with_nothing_recorded_says_so() -> None:
    empty = drill_evidence()
    empty = RunEvidence(empty.run, [], [], [], [], [])
    assert "no results, steps, measurements or changes recorded" in render(empty)


def test_the_check_summary_still_counts_per_host() -> None:
    checks = [
        CheckResult("a", "web1", ("CG-SSH-001",), Outcome.PASS),
        CheckResult("a", "db1", ("CG-SSH-001",), Outcome.FAIL, observed="yes"),
    ]
    out = io.StringIO()
    check_summary(
        Console(file=out, width=200), roll_up_all(checks), [HostRun("db1", [], "refused")], "r1"
    )
    text = out.getvalue()
    assert "Controls per host" in text and "db1: refused" in text
    assert "a: yes" in text and "evidence run r1" in text
