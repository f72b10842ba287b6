"""The drill report: steps with timings, results, deviations and the corrective actions to
take with their owner, as JSON (machines) and Markdown (people), written to the run
directory so the recorder keeps both as artifacts (dr/README.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityguard.core.records import Measurement, Outcome
from cityguard.drill.durations import format_duration

if TYPE_CHECKING:
    from cityguard.drill.plan import Plan


@dataclass
class ReportStep:
    name: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "pass"
    detail: str | None = None

    def fail(self, detail: str | None = None) -> None:
        self.outcome = "fail"
        if detail is not None:
            self.detail = detail


@dataclass(frozen=True)
class Finding:
    step: str
    deviation: str
    corrective_action: str
    owner: str


@dataclass
class DrillReport:
    system: str
    title: str
    owner: str
    plan_file: str
    restore_target: str
    targets: dict[str, str]
    started_at: datetime
    finished_at: datetime | None = None
    result: str = "running"
    exit_code: int | None = None
    steps: list[ReportStep] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    verifications: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, plan: Plan) -> DrillReport:
        spec = plan.spec
        return cls(
            system=spec.system,
            title=spec.title,
            owner=spec.owner,
            plan_file=plan.display,
            restore_target=spec.restore.target,
            targets={"rpo": spec.targets.rpo, "rto": spec.targets.rto},
            started_at=datetime.now(UTC),
        )

    @contextmanager
    def step(self, name: str) -> Iterator[ReportStep]:
        current = ReportStep(name, datetime.now(UTC))
        self.steps.append(current)
        try:
            yield current
        except BaseException as error:
            if current.outcome == "pass":
                current.outcome = "error" if not _is_failure(error) else "fail"
            current.detail = current.detail or str(error)
            raise
        finally:
            current.finished_at = datetime.now(UTC)

    def finding(self, step: str, deviation: str, action: str) -> None:
        self.findings.append(Finding(step, deviation, action, self.owner))

    def error(self, message: str) -> None:
        self.errors.append(message)

    def measure(self, measurement: Measurement) -> None:
        self.measurements.append(
            {
                "name": measurement.name,
                "value": round(measurement.value, 3),
                "unit": measurement.unit,
                "target": measurement.target,
                "met": measurement.met,
            }
        )

    def verification(self, check: str, outcome: Outcome, observed: str, expected: str) -> None:
        self.verifications.append(
            {"check": check, "outcome": str(outcome), "observed": observed, "expected": expected}
        )

    def finish(self, exit_code: int) -> None:
        self.finished_at = datetime.now(UTC)
        self.exit_code = int(exit_code)
        self.result = {0: "pass", 1: "fail"}.get(int(exit_code), "error")
        if self.result == "error" and not self.findings:
            for message in self.errors:
                self.finding("drill", message, "Fix what stopped the drill and run it again")

    def summary(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "result": self.result,
            "measurements": {m["name"]: m["value"] for m in self.measurements},
            "findings": [f.deviation for f in self.findings],
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["steps"] = [
            {
                "name": s.name,
                "outcome": s.outcome,
                "duration_s": round(
                    ((s.finished_at or s.started_at) - s.started_at).total_seconds(), 3
                ),
                "detail": s.detail,
            }
            for s in self.steps
        ]
        return data


def _is_failure(error: BaseException) -> bool:
    code = getattr(error, "exit_code", None)
    return code is not None and int(code) == 1


def render_markdown(report: DrillReport) -> str:
    data = report.to_dict()
    lines = [
        f"# Restore drill: {report.title} ({report.system})",
        "",
        f"- Result: **{report.result.upper()}**",
        f"- Started: {data['started_at']}; finished: {data['finished_at']}",
        f"- Owner: {report.owner}; plan: `{report.plan_file}`; "
        f"restore target: `{report.restore_target}`",
        f"- Targets: RPO {report.targets['rpo']}, RTO {report.targets['rto']}",
        "",
        "## Steps",
        "",
        "| step | outcome | duration | detail |",
        "|---|---|---|---|",
    ]
    for step in data["steps"]:
        detail = (step["detail"] or "").replace("|", "\\|")
        lines.append(
            f"| {step['name']} | {step['outcome']} | {format_duration(step['duration_s'])} "
            f"| {detail} |"
        )
    lines += ["", "## Measurements", "", "| name | value | target | met |", "|---|---|---|---|"]
    for m in report.measurements:
        value = format_duration(m["value"]) if m["unit"] == "s" else f"{m['value']:.0f} {m['unit']}"
        target = (
            ""
            if m["target"] is None
            else (format_duration(m["target"]) if m["unit"] == "s" else str(m["target"]))
        )
        met = {True: "yes", False: "**no**", None: ""}[m["met"]]
        lines.append(f"| {m['name']} | {value} | {target} | {met} |")
    lines += [
        "",
        "## Verification",
        "",
        "| check | outcome | observed | expected |",
        "|---|---|---|---|",
    ]
    for v in report.verifications:
        lines.append(
            f"| {v['check']} | {v['outcome']} | {v['observed'].replace('|', '/')} "
            f"| {v['expected'].replace('|', '/')} |"
        )
    lines += ["", "## Deviations and corrective actions", ""]
    if not report.findings:
        lines.append("None.")
    else:
        lines += ["| step | deviation | corrective action | owner |", "|---|---|---|---|"]
        for f in report.findings:
            lines.append(f"| {f.step} | {f.deviation} | {f.corrective_action} | {f.owner} |")
    return "\n".join(lines) + "\n"


def write_reports(report: DrillReport, run_dir: Path) -> None:
    (run_dir / "drill-report.json").write_text(
        json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8"
    )
    (run_dir / "drill-report.md").write_text(render_markdown(report), encoding="utf-8")
