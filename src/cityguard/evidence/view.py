"""How evidence is shown: rich tables for people, JSON for machines. No logic about outcomes.

Shared by every command that shows results (check, evidence show, and the areas to come), so a
result looks the same wherever it is read. ``evidence show`` renders every kind of record a run
holds (RunEvidence): the run itself, control results, steps, measurements, changes, artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cityguard.core.records import (
    Change,
    ControlResult,
    Measurement,
    Outcome,
    Step,
    Subject,
    SubjectKind,
)
from cityguard.evidence.artifacts import Artifact
from cityguard.evidence.model import RunRecord, format_time
from cityguard.evidence.store import EvidenceStore

STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "red",
    Outcome.ERROR: "magenta",
    Outcome.WAIVED: "yellow",
    Outcome.NOT_APPLICABLE: "dim",
}
COMPARISON_SIGN = {"at-most": "≤", "at-least": "≥", "equal": "="}
#: How many hex digits of an artifact's SHA-256 the table shows (JSON has all of them).
SHA_PREFIX = 16
#: How a check run's summary words the problem of a host it could not reach.
UNREACHABLE_LINE = "unreachable: "


class HostProblem(Protocol):
    """What the summary needs of a host's check run (verify.runner.HostRun provides it)."""

    @property
    def host(self) -> str: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def unreachable(self) -> bool: ...


@dataclass(frozen=True)
class RunEvidence:
    """Everything one run recorded, as ``evidence show`` presents it."""

    run: RunRecord
    controls: list[ControlResult]
    steps: list[Step]
    measurements: list[Measurement]
    changes: list[Change]
    artifacts: list[Artifact]


def load_run_evidence(store: EvidenceStore, run_id: str) -> RunEvidence:
    """Read every record of one run; UnknownRun if there is no such run."""
    run = store.get_run(run_id)
    return RunEvidence(
        run=run,
        controls=store.control_results(run.id),
        steps=store.steps(run.id),
        measurements=store.measurements(run.id),
        changes=store.changes(run.id),
        artifacts=store.artifacts(run.id),
    )


def _plain(text: str | None) -> Text:
    """Recorded text as it is: a "[" in a reason or a path must not be taken for rich markup."""
    return Text(text or "")


def _styled(outcome: Outcome) -> Text:
    return Text(outcome.value, style=STYLE[outcome])


def subject_label(subject: Subject) -> str:
    """A host by its name, as always shown; any other subject with its kind."""
    return subject.name if subject.kind is SubjectKind.HOST else str(subject)


def check_summary(
    console: Console, controls: list[ControlResult], hosts: Sequence[HostProblem], run_id: str
) -> None:
    """Counts per host, the controls that did not pass, then one line per host with a problem.

    An unreachable host's controls (errors, all for the same reason) stay out of the table of
    controls that did not pass: its one line says why."""
    unreachable = {h.host for h in hosts if h.unreachable}
    _controls_tables(console, controls, title="Controls per host", leave_out=unreachable)
    for host_run in hosts:
        if host_run.problem:
            line = Text.assemble((host_run.host, "magenta"), ": ", host_run.problem)
            console.print(line, soft_wrap=True)  # one line, however wide the console
    console.print(f"evidence run {run_id}")


def _controls_tables(
    console: Console,
    controls: list[ControlResult],
    title: str,
    leave_out: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Outcome counts per subject, then every control that did not pass with why (except on the
    hosts in leave_out, whose problem is said once elsewhere)."""
    table = Table(title=title)
    table.add_column("host" if _hosts_only(controls) else "subject")
    for outcome in Outcome:
        table.add_column(outcome.value, justify="right", style=STYLE[outcome])
    counts: dict[str, dict[Outcome, int]] = {}
    for control in controls:
        label = subject_label(control.subject)
        counts.setdefault(label, dict.fromkeys(Outcome, 0))[control.outcome] += 1
    for label in sorted(counts):
        table.add_row(_plain(label), *(str(counts[label][o]) for o in Outcome))
    console.print(table)
    problems = [
        c
        for c in controls
        if c.outcome in (Outcome.FAIL, Outcome.ERROR)
        and not (c.subject_kind is SubjectKind.HOST and c.host in leave_out)
    ]
    if problems:
        detail = Table(title="Controls that did not pass")
        column = "host" if _hosts_only(problems) else "subject"
        for name in (column, "control", "outcome", "observed / reason"):
            detail.add_column(name, overflow="fold")
        for c in problems:
            detail.add_row(
                _plain(subject_label(c.subject)),
                _plain(c.control_id),
                _styled(c.outcome),
                _plain(c.reason or c.observed),
            )
        console.print(detail)


def _hosts_only(controls: Iterable[ControlResult]) -> bool:
    return all(c.subject_kind is SubjectKind.HOST for c in controls)


def _control_json(c: ControlResult) -> dict[str, Any]:
    return {
        "control": c.control_id,
        "host": c.host,
        "subject_kind": c.subject_kind.value,
        "outcome": c.outcome.value,
        "reason": c.reason,
        "checks": [
            {
                **asdict(k),
                "outcome": k.outcome.value,
                "controls": list(k.controls),
                "subject_kind": k.subject_kind.value,
            }
            for k in c.checks
        ],
    }


def controls_json(
    controls: Iterable[ControlResult], run_id: str, hosts: Sequence[HostProblem] = ()
) -> str:
    """The run's control results; `hosts` adds each host's problem (unreachable and why)."""
    document: dict[str, Any] = {"run": run_id, "controls": [_control_json(c) for c in controls]}
    if hosts:
        document["host_problems"] = [
            {"host": h.host, "unreachable": h.unreachable, "problem": h.problem}
            for h in hosts
            if h.problem
        ]
    return json.dumps(document, indent=2)


def runs_table(console: Console, runs: list[RunRecord]) -> None:
    table = Table(title="Evidence runs (newest first)")
    for column in ("run", "started (UTC)", "command", "operator", "hosts", "exit", "commit"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.id,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.command,
            run.operator,
            str(len(run.hosts)),
            "-" if run.exit_code is None else str(run.exit_code),
            (run.content_commit or "-")[:12],
        )
    console.print(table)


# -- evidence show ------------------------------------------------------------------------


def show_run(console: Console, evidence: RunEvidence, *, diffs: bool = False) -> None:
    """Every record of the run as tables; a kind of record the run has none of is left out.
    With diffs, each change's diff follows the changes table."""
    _run_header(console, evidence.run)
    problems = evidence.run.summary.get("host_problems")
    problems = problems if isinstance(problems, dict) else {}  # a check run's, by host
    if evidence.controls:
        unreachable = {h for h, p in problems.items() if str(p).startswith(UNREACHABLE_LINE)}
        _controls_tables(console, evidence.controls, title="Control results", leave_out=unreachable)
    for host, problem in sorted(problems.items()):
        console.print(Text.assemble((host, "magenta"), ": ", str(problem)), soft_wrap=True)
    if evidence.steps:
        _steps_table(console, evidence.steps)
    if evidence.measurements:
        _measurements_table(console, evidence.measurements)
    if evidence.changes:
        _changes_table(console, evidence.changes, diffs=diffs)
    if evidence.artifacts:
        _artifacts_table(console, evidence.artifacts)
    kinds = (evidence.controls, evidence.steps, evidence.measurements, evidence.changes)
    if not any(kinds):
        console.print("no results, steps, measurements or changes recorded")


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _run_header(console: Console, run: RunRecord) -> None:
    table = Table(title=f"Evidence run {run.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    duration = "-"
    if run.finished_at is not None:
        duration = f"{(run.finished_at - run.started_at).total_seconds():.1f} s"
    rows = [
        ("command", run.command),
        ("site", run.site),
        ("operator", run.operator),
        ("started (UTC)", _time(run.started_at)),
        ("finished (UTC)", _time(run.finished_at) if run.finished_at else "still running"),
        ("duration", duration),
        ("exit code", "-" if run.exit_code is None else str(run.exit_code)),
        ("commit", run.content_commit or "unknown"),
        ("baseline", run.baseline or "not recorded"),
        ("hosts", ", ".join(run.hosts) or "-"),
        ("tools", ", ".join(f"{k} {v}" for k, v in sorted(run.tool_versions.items())) or "-"),
        ("run directory", run.artifacts_dir or "-"),
    ]
    for field, value in rows:
        table.add_row(field, _plain(value))
    console.print(table)


def _steps_table(console: Console, steps: list[Step]) -> None:
    table = Table(title="Steps")
    for column in ("step", "subject", "started (UTC)", "duration", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(
            _plain(step.name),
            _plain(subject_label(step.subject)),
            _time(step.started_at),
            f"{step.duration_s:.1f} s",
            _styled(step.outcome),
            _plain(step.detail),
        )
    console.print(table)


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.6g}"


def _measurements_table(console: Console, measurements: list[Measurement]) -> None:
    table = Table(title="Measurements")
    for column in ("measurement", "subject", "value", "target", "met"):
        table.add_column(column, justify="right" if column in ("value", "target") else "left")
    for m in measurements:
        target = "-"
        if m.target is not None and m.comparison is not None:
            target = f"{COMPARISON_SIGN[m.comparison.value]} {_number(m.target)} {m.unit}"
        met = {True: Text("met", "green"), False: Text("not met", "red"), None: Text("-")}[m.met]
        table.add_row(
            _plain(m.name),
            _plain(subject_label(m.subject)),
            _plain(f"{_number(m.value)} {m.unit}"),
            _plain(target),
            met,
        )
    console.print(table)


def _changes_table(console: Console, changes: list[Change], *, diffs: bool) -> None:
    table = Table(title="Changes")
    for column in ("subject", "control", "description", "diff"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(
            _plain(subject_label(change.subject)),
            _plain(change.control_id or "(no control)"),
            _plain(change.description),
            f"{len(change.diff.splitlines())} lines" if change.diff else "-",
        )
    console.print(table)
    if diffs:
        for change in changes:
            if change.diff:
                where = f"{subject_label(change.subject)} {change.control_id or '(no control)'}"
                console.print(f"{where}: {change.description}", style="yellow", markup=False)
                indented = "\n".join("    " + line for line in change.diff.splitlines())
                console.print(indented, markup=False, highlight=False)


def _artifacts_table(console: Console, artifacts: list[Artifact]) -> None:
    table = Table(title=f"Artifacts ({len(artifacts)} files in the run directory)")
    for column in ("path", "size", "type", "sha256"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for artifact in artifacts:
        table.add_row(
            _plain(artifact.path),
            _size(artifact.size),
            _plain(artifact.media_type),
            artifact.sha256[:SHA_PREFIX],
        )
    console.print(table)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TiB":
            break
    return f"{scaled:.1f} {unit}"


def _subject_json(subject: Subject) -> dict[str, str]:
    return {"kind": subject.kind.value, "name": subject.name}


def run_evidence_json(evidence: RunEvidence) -> str:
    """The run and all its records as one JSON document (times ISO-8601 UTC)."""
    run = evidence.run
    document = {
        "run": {
            "id": run.id,
            "site": run.site,
            "command": run.command,
            "operator": run.operator,
            "started_at": format_time(run.started_at),
            "finished_at": format_time(run.finished_at) if run.finished_at else None,
            "exit_code": run.exit_code,
            "content_commit": run.content_commit,
            "baseline": run.baseline,
            "parameters": run.parameters,
            "tool_versions": run.tool_versions,
            "hosts": run.hosts,
            "artifacts_dir": run.artifacts_dir,
            "summary": run.summary,
        },
        "controls": [_control_json(c) for c in evidence.controls],
        "steps": [
            {
                "name": s.name,
                "subject": _subject_json(s.subject),
                "started_at": format_time(s.started_at),
                "finished_at": format_time(s.finished_at),
                "duration_s": s.duration_s,
                "outcome": s.outcome.value,
                "detail": s.detail,
            }
            for s in evidence.steps
        ],
        "measurements": [
            {
                "name": m.name,
                "subject": _subject_json(m.subject),
                "value": m.value,
                "unit": m.unit,
                "target": m.target,
                "comparison": m.comparison.value if m.comparison else None,
                "met": m.met,
            }
            for m in evidence.measurements
        ],
        "changes": [
            {
                "subject": _subject_json(c.subject),
                "control": c.control_id,
                "description": c.description,
                "diff": c.diff,
            }
            for c in evidence.changes
        ],
        "artifacts": [asdict(a) for a in evidence.artifacts],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
