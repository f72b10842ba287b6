"""Orchestration of `cityguard backup` and `cityguard drill`: select the system, open the
evidence run, call restic and the hosts, record steps and measurements, decide the exit code.

Backups (pull model, dr/README.md): per source one snapshot streamed from the source host over
SSH (``pg_dump -Fc``, ``pg_dumpall --globals-only``, or a tar stream), tagged with the system,
the backup set and the part; then the set's manifest (row counts, newest row, file hashes) as
the last snapshot of the set. A set without a manifest is incomplete and never used by a drill.
"""

from __future__ import annotations

import secrets as random_tokens
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.core.errors import CityguardError, UsageError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.process import Completed, ProcessError
from cityguard.core.records import (
    CheckResult,
    Comparison,
    ControlResult,
    Measurement,
    Outcome,
    Subject,
    SubjectKind,
    roll_up_all,
)
from cityguard.core.secrets import redact
from cityguard.drill import manifest as mf
from cityguard.drill import remote, restic
from cityguard.drill.alerts import Event, publish
from cityguard.drill.durations import format_duration
from cityguard.drill.objectlock import LockPolicy, lifecycle_warnings, lock_problems
from cityguard.drill.plan import FilesSource, Plan, PlanFile, PostgresSource, load_plans
from cityguard.drill.progress import DrillProgress, silent
from cityguard.drill.report import DrillReport, Finding, write_reports
from cityguard.drill.runner import (
    LONG,
    SHORT,
    Hosts,
    Restic,
    calendar_problem,
    longest_gap,
    restic_path,
)
from cityguard.drill.s3 import Bucket, key_prefix
from cityguard.drill.settings import DrillSettings
from cityguard.evidence.recorder import Recorder
from cityguard.workspace import Workspace

# Controls a drill proves (policies/controls/dr.yml).
CONTROL_RPO = "CG-DR-001"
CONTROL_INTEGRITY = "CG-DR-002"
CONTROL_RESTORE = "CG-DR-003"
CONTROL_ISOLATION = "CG-DR-004"
CONTROL_OFFSITE = "CG-DR-005"


class DrillFailed(CityguardError):
    """Something the drill checked failed (exit code 1)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class DrillArea:
    settings: DrillSettings
    plans: dict[str, Plan]
    restic_binary: str


def load_area(workspace: Workspace, *, check_schedules: bool = True) -> DrillArea:
    site = workspace.site
    settings = site.section("drill", DrillSettings)
    if settings is None:
        raise UsageError(f"{site.display or site.path}: drill: the site file has no drill section")
    plans = load_plans(
        settings.plan_files(site.path),
        workspace.inventory,
        state_dir=site.state_dir,
        scratch_group=settings.scratch_group,
        calendar_check=calendar_problem if check_schedules else None,
        calendar_gap=longest_gap if check_schedules else None,
    )
    return DrillArea(settings, {p.system: p for p in plans}, restic_path(settings.restic))


def pick(area: DrillArea, system: str) -> Plan:
    plan = area.plans.get(system)
    if plan is None:
        known = ", ".join(sorted(area.plans)) or "none"
        raise UsageError(f"system: no plan for '{system}' (plans: {known})")
    return plan


def system_subject(plan: Plan) -> Subject:
    return Subject(SubjectKind.SYSTEM, plan.system)


def restic_for(workspace: Workspace, area: DrillArea, plan: Plan) -> Restic:
    return Restic.for_plan(plan, area.restic_binary, workspace.site.state_dir)


# --- backup ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupOutcome:
    run_id: str
    system: str
    set_id: str
    exit_code: ExitCode
    bytes: int
    duration_s: float
    sources: dict[str, mf.SourceRecord]


def backup_init(workspace: Workspace, system: str) -> str:
    area = load_area(workspace)
    plan = pick(area, system)
    repo = restic_for(workspace, area, plan)
    if repo.exists():
        return f"{plan.system}: repository {plan.repository_location} already exists"
    if plan.spec.repository.path is not None:
        Path(plan.repository_location).parent.mkdir(parents=True, exist_ok=True)
    repo.run(restic.init_args(), "creating the repository", timeout=300)
    return f"{plan.system}: repository {plan.repository_location} created"


def new_set_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + random_tokens.token_hex(3)


@dataclass(frozen=True)
class BackupClock:
    """The time limit of one whole backup (the plan's ``backup_timeout`` or ``--timeout``):
    every restic and SSH call of the backup gets at most what is left of it."""

    limit_s: int
    started: float = field(default_factory=time.monotonic)

    def left(self, cap: float, what: str) -> float:
        """Seconds the next call may take (at most ``cap``); none left stops the backup."""
        left = self.limit_s - (time.monotonic() - self.started)
        if left <= 0:
            raise restic.TimedOut(
                f"{what}: the backup did not finish within {self.limit_s} s; "
                "this step did not start"
            )
        return min(cap, left)

    def restic(
        self,
        repo: Restic,
        args: tuple[str, ...],
        what: str,
        *,
        cap: float = LONG,
        input_text: str | None = None,
    ) -> Completed:
        """``repo.run`` within the limit; stopped at the limit, its error names the limit."""
        timeout = self.left(cap, what)
        try:
            return repo.run(args, what, timeout=timeout, input_text=input_text)
        except restic.TimedOut as error:
            if timeout >= cap:  # the call's own limit ran out, not the backup's
                raise
            message = restic.stopped_message(what, self.limit_s, error.retries, limit="the backup")
            raise restic.TimedOut(redact(message), error.retries) from None

    def host(self, hosts: Hosts, host: str, command: str, what: str) -> Completed:
        """``hosts.run`` within the limit (and SSH's usual one)."""
        timeout = self.left(SHORT, what)
        try:
            return hosts.run(host, command, what, timeout=timeout)
        except ProcessError as error:
            if error.failure != "timed-out" or timeout >= SHORT:
                raise
            raise restic.TimedOut(
                f"{what} on {host}: the backup did not finish within {self.limit_s} s; "
                "the command was stopped"
            ) from None


def backup_run(workspace: Workspace, system: str, timeout_s: int | None = None) -> BackupOutcome:
    """Back ``system`` up; ``timeout_s`` (``--timeout``) overrides the plan's backup_timeout."""
    area = load_area(workspace)
    plan = pick(area, system)
    subject = system_subject(plan)
    repo = restic_for(workspace, area, plan)
    hosts = Hosts(workspace.inventory)
    run_dir = workspace.new_run_dir("backup")
    set_id = new_set_id()
    clock = BackupClock(timeout_s or plan.spec.backup_timeout_s)
    started = datetime.now(UTC)
    records: dict[str, mf.SourceRecord] = {}
    with workspace.record(
        f"backup run {plan.system}", plan.source_hosts, run_dir, workspace.selection
    ) as rec:
        with rec.step("preflight", subject) as step:
            step.detail = f"time limit {clock.limit_s} s"
            clock.restic(repo, restic.unlock_args(), "removing stale locks", cap=300)
        for source in plan.spec.sources:
            with rec.step(f"backup {source.name}", subject) as step:
                if isinstance(source, PostgresSource):
                    record = _backup_postgres(repo, hosts, plan, source, set_id, clock)
                else:
                    record = _backup_files(repo, hosts, plan, source, set_id, clock)
                records[source.name] = record
                step.detail = f"snapshot {record.snapshot[:8]}, {record.bytes} bytes"
        with rec.step("manifest", subject):
            manifest = mf.Manifest(plan.system, set_id, datetime.now(UTC).isoformat(), records)
            clock.restic(
                repo,
                restic.backup_stdin_args(
                    mf.manifest_path(plan.system),
                    tags=restic.snapshot_tags(plan.system, set_id, restic.MANIFEST_PART),
                    host=plan.system,
                ),
                "recording the backup manifest",
                input_text=manifest.to_json(),
            )
            (run_dir / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        with rec.step("retention", subject):
            clock.restic(
                repo,
                restic.forget_args(plan.system, plan.spec.retention.keep(), prune=True),
                "applying the retention",
            )
        duration = (datetime.now(UTC) - started).total_seconds()
        total = sum(r.bytes for r in records.values())
        rec.add_measurements(
            [
                Measurement("bytes", total, "bytes", subject),
                Measurement("duration_s", duration, "s", subject),
                *(
                    Measurement(f"bytes:{name}", r.bytes, "bytes", subject)
                    for name, r in records.items()
                ),
            ]
        )
        rec.finish(
            ExitCode.OK,
            {
                "set": set_id,
                "bytes": total,
                "sources": sorted(records),
                "timeout_s": clock.limit_s,
            },
        )
    _publish(area, Event(plan.system, "backup", True, time.time(), run_id=rec.run_id), [])
    return BackupOutcome(rec.run_id, plan.system, set_id, ExitCode.OK, total, duration, records)


def _backup_postgres(
    repo: Restic,
    hosts: Hosts,
    plan: Plan,
    source: PostgresSource,
    set_id: str,
    clock: BackupClock,
) -> mf.SourceRecord:
    counts: dict[str, int] = {}
    if source.tables:
        done = clock.host(
            hosts,
            source.host,
            remote.psql(source.database, source.port, remote.row_counts_query(source.tables)),
            "counting rows",
        )
        counts = remote.parse_row_counts(done.stdout)
    newest = None
    if source.freshness is not None:
        query = remote.freshness_query(source.freshness.table, source.freshness.column)
        done = clock.host(
            hosts, source.host, remote.psql(source.database, source.port, query), "newest row"
        )
        newest = done.stdout.strip() or None
    globals_done = clock.restic(
        repo,
        restic.backup_from_command_args(
            mf.globals_path(plan.system, source.name),
            hosts.ssh(source.host, remote.pg_dumpall_globals(source.port)),
            tags=restic.snapshot_tags(plan.system, set_id, f"{source.name}-globals"),
            host=source.host,
        ),
        f"backing up the roles of {source.name} (pg_dumpall --globals-only on {source.host})",
    )
    dump_done = clock.restic(
        repo,
        restic.backup_from_command_args(
            mf.dump_path(plan.system, source.name),
            hosts.ssh(source.host, remote.pg_dump(source.database, source.port)),
            tags=restic.snapshot_tags(plan.system, set_id, source.name),
            host=source.host,
        ),
        f"backing up {source.name} (pg_dump of {source.database} on {source.host})",
    )
    summary = restic.parse_backup(dump_done.stdout)
    globals_summary = restic.parse_backup(globals_done.stdout)
    return mf.SourceRecord(
        kind="postgresql",
        snapshot=summary.snapshot_id,
        path=mf.dump_path(plan.system, source.name),
        host=source.host,
        bytes=summary.bytes_processed,
        row_counts=counts,
        newest_row=newest,
        globals_snapshot=globals_summary.snapshot_id,
        globals_path=mf.globals_path(plan.system, source.name),
    )


def _backup_files(
    repo: Restic, hosts: Hosts, plan: Plan, source: FilesSource, set_id: str, clock: BackupClock
) -> mf.SourceRecord:
    hashes: dict[str, str] = {}
    if source.sample:
        done = clock.host(
            hosts,
            source.host,
            remote.sample_hashes(source.paths, source.sample),
            "hashing a sample",
        )
        hashes = remote.parse_sha256sum(done.stdout)
    done = clock.restic(
        repo,
        restic.backup_from_command_args(
            mf.tar_path(plan.system, source.name),
            hosts.ssh(source.host, remote.tar_create(source.paths)),
            tags=restic.snapshot_tags(plan.system, set_id, source.name),
            host=source.host,
        ),
        f"backing up {source.name} (tar of {', '.join(source.paths)} on {source.host})",
    )
    summary = restic.parse_backup(done.stdout)
    return mf.SourceRecord(
        kind="files",
        snapshot=summary.snapshot_id,
        path=mf.tar_path(plan.system, source.name),
        host=source.host,
        bytes=summary.bytes_processed,
        hashes=hashes,
    )


# --- off-site bucket ------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsiteOutcome:
    system: str
    bucket: str
    done: list[str]
    problems: list[str]
    warnings: list[str]
    exit_code: ExitCode


def offsite_bucket(plan: Plan) -> tuple[Bucket, LockPolicy]:
    s3 = plan.spec.repository.s3
    if s3 is None or plan.s3_access_key is None or plan.s3_secret_key is None:
        raise UsageError(f"{plan.display}: repository.s3: the plan's repository is not on S3")
    bucket = Bucket(s3.endpoint, s3.bucket, s3.region, plan.s3_access_key, plan.s3_secret_key)
    return bucket, LockPolicy(s3.retention_days)


def backup_offsite(workspace: Workspace, system: str, *, setup: bool) -> OffsiteOutcome:
    """Create or verify the system's bucket (``setup``), then read its lock configuration
    back: a configuration weaker than the plan asks fails (exit code 1), whatever set it."""
    area = load_area(workspace)
    plan = pick(area, system)
    bucket, policy = offsite_bucket(plan)
    prefix = key_prefix(plan.spec.repository.s3.prefix if plan.spec.repository.s3 else "")
    subject = system_subject(plan)
    run_dir = workspace.new_run_dir("backup-offsite")
    with workspace.record(f"backup offsite {plan.system}", [], run_dir, workspace.selection) as rec:
        done: list[str] = []
        if setup:
            with rec.step("bucket setup", subject) as step:
                done = bucket.ensure(policy)
                done.append(f"retention extended on {bucket.extend_retention(policy)} objects")
                # servers without lifecycle rules (Versity Gateway): cityguard is the rule
                done.append(bucket.expire_noncurrent(policy, prefix).line)
                step.detail = done[-1]
        with rec.step("lock read back", subject) as step:
            observed = bucket.observed()
            problems = lock_problems(observed, policy)
            warnings = lifecycle_warnings(observed, policy)
            step.detail = "; ".join(warnings) or None
            if problems:
                step.fail("; ".join(problems))
        outcome = Outcome.FAIL if problems else Outcome.PASS
        checks = [
            CheckResult(
                "offsite:object-lock",
                plan.system,
                (CONTROL_OFFSITE,),
                outcome,
                "; ".join(problems) or "versioning, COMPLIANCE retention, lifecycle as planned",
                f"COMPLIANCE {policy.retention_days} days, versioning, noncurrent expiry",
                subject_kind=SubjectKind.SYSTEM,
            )
        ]
        rec.add_check_results(checks)
        rec.add_control_results(roll_up_all(checks))
        code = ExitCode.FAILED if problems else ExitCode.OK
        summary = {"bucket": bucket.name, "problems": problems, "warnings": warnings}
        rec.finish(code, {**summary, "done": done})
    return OffsiteOutcome(plan.system, bucket.name, done, problems, warnings, code)


# --- backup sets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupSet:
    set_id: str
    manifest: mf.Manifest
    manifest_snapshot: restic.Snapshot
    snapshots: list[restic.Snapshot]

    @property
    def taken_at(self) -> datetime:
        """When the oldest part of the set was taken: the data is at least as old as this."""
        return min(s.time for s in self.snapshots)


def latest_set(repo: Restic, plan: Plan, scratch: Path) -> BackupSet | None:
    """The newest complete backup set (one with a manifest), or None."""
    snapshots = repo.snapshots([f"{restic.TAG_SYSTEM}{plan.system}"])
    manifests = [s for s in snapshots if s.tag_value(restic.TAG_PART) == restic.MANIFEST_PART]
    if not manifests:
        return None
    newest = manifests[-1]
    set_id = newest.tag_value(restic.TAG_SET) or ""
    target = scratch / "manifest.json"
    repo.run(
        restic.dump_args(newest.id, mf.manifest_path(plan.system), str(target)),
        "reading the backup manifest",
        timeout=300,
    )
    manifest = mf.Manifest.from_json(target.read_text(encoding="utf-8"))
    members = [s for s in snapshots if s.tag_value(restic.TAG_SET) == set_id]
    return BackupSet(set_id, manifest, newest, members)


# --- drill -----------------------------------------------------------------------------------


@dataclass
class DrillOutcome:
    run_id: str
    system: str
    exit_code: ExitCode
    report: DrillReport
    findings: list[Finding] = field(default_factory=list)


def drill_run(
    workspace: Workspace, system: str, say: Callable[[str], None] = silent
) -> DrillOutcome:
    """Run the plan's restore drill; ``say`` hears each step and restored part as it happens."""
    area = load_area(workspace)
    plan = pick(area, system)
    subject = system_subject(plan)
    repo = restic_for(workspace, area, plan)
    hosts = Hosts(workspace.inventory)
    target = plan.spec.restore.target
    run_dir = workspace.new_run_dir("drill")
    report = DrillReport.start(plan)
    progress = DrillProgress(say, report.started_at, plan.spec.targets.rto_s)
    checks: list[CheckResult] = []
    scratch = Path(tempfile.mkdtemp(prefix="drill-", dir=_tmp_root(workspace)))
    cleanup: list[str] = []
    databases: list[str] = []
    code = ExitCode.OK
    with workspace.record(
        f"drill run {plan.system}", [target, *plan.source_hosts], run_dir, workspace.selection
    ) as rec:
        try:
            # leaving the pool waits for what still runs there (starting PostgreSQL) before
            # the teardown below stops it
            with ThreadPoolExecutor(max_workers=6, thread_name_prefix="drill") as background:
                code = _drill(
                    rec, report, progress, checks, plan, repo, hosts, scratch, cleanup,
                    databases, background,
                )  # fmt: skip
        except DrillFailed:
            code = ExitCode.FAILED
        except CityguardError as error:
            report.error(str(error))
            code = error.exit_code
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if cleanup or databases:
                _teardown(rec, report, plan, hosts, cleanup, databases, subject)
            report.finish(code)
            rec.add_check_results(checks)
            rec.add_control_results(_controls(checks))
            write_reports(report, run_dir)
        rec.finish(code, report.summary())
    measured = report.summary()["measurements"]
    event = Event(
        plan.system,
        "drill",
        code == ExitCode.OK,
        time.time(),
        measured.get("rto_s"),
        measured.get("rpo_s"),
        rec.run_id,
    )
    report.warnings += _publish(area, event, [f.deviation for f in report.findings])
    return DrillOutcome(rec.run_id, plan.system, code, report, report.findings)


def _publish(area: DrillArea, event: Event, findings: list[str]) -> list[str]:
    return publish(
        event,
        findings,
        textfile_path=area.settings.metrics_textfile,
        webhook_url=area.settings.webhook_url,
    )


def _tmp_root(workspace: Workspace) -> Path:
    path = workspace.site.state_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _controls(checks: list[CheckResult]) -> list[ControlResult]:
    return roll_up_all(checks)


def _check(
    checks: list[CheckResult],
    plan: Plan,
    check_id: str,
    control: str,
    outcome: Outcome,
    observed: str,
    expected: str,
    reason: str | None = None,
) -> None:
    checks.append(
        CheckResult(
            check_id,
            plan.system,
            (control,),
            outcome,
            observed,
            expected,
            reason,
            subject_kind=SubjectKind.SYSTEM,
        )
    )


def _drill(
    rec: Recorder,
    report: DrillReport,
    progress: DrillProgress,
    checks: list[CheckResult],
    plan: Plan,
    repo: Restic,
    hosts: Hosts,
    scratch: Path,
    cleanup: list[str],
    databases: list[str],
    background: Executor,
) -> ExitCode:
    """The drill's steps in order; ``background`` runs what does not wait for the step before:
    preflight's independent questions and the newest backup set, PostgreSQL starting on the
    target once it has answered for itself, every part restoring while the repository is
    checked."""
    subject = system_subject(plan)
    spec = plan.spec
    target = spec.restore.target
    failed = False
    postgres_started: Future[Completed] | None = None

    # preflight -------------------------------------------------------------------------------
    with rec.step("preflight", subject) as step, report.step("preflight") as rstep:
        progress.step("preflight")
        if target in plan.source_hosts:  # the plan loader refuses this too
            raise UsageError(f"{plan.display}: restore.target: '{target}' is a source host")
        # independent questions, asked at once: preflight takes as long as the slowest answer.
        # `restic unlock` opens the repository (its typed errors: missing, wrong password) and
        # removes stale locks in one start of restic
        opened = background.submit(
            repo.run, restic.unlock_args(), "opening the repository and removing stale locks",
            timeout=300,
        )  # fmt: skip
        probed = background.submit(
            hosts.run, target, remote.probe_ports(_isolation_targets(plan)),
            "probing the sources", timeout=60,
        )  # fmt: skip
        disk = background.submit(hosts.run, target, remote.free_kib("/"), "checking free disk")
        offsite = (
            background.submit(_weakened_lock, plan) if spec.repository.s3 is not None else None
        )
        # reading snapshots takes no lock, so the next step's answer is fetched meanwhile
        newest_set = background.submit(latest_set, repo, plan, scratch)
        reachable = remote.parse_open(probed.result().stdout)
        isolated = not reachable
        seen = ", ".join(f"{h}:{p}" for h, p in reachable) or "none reachable"
        _check(
            checks,
            plan,
            "preflight:isolation",
            CONTROL_ISOLATION,
            Outcome.PASS if isolated else Outcome.FAIL,
            seen,
            "no source service port reachable from " + target,
        )
        free_mb = remote.parse_df(disk.result().stdout) // 1024
        enough = free_mb >= spec.restore.min_free_mb
        if isolated and enough:
            # the target answered for itself: PostgreSQL starts there while the repository and
            # the S3 server answer, and from here on the target is changed, so the teardown runs
            cleanup.append(spec.restore.directory)
            if any(isinstance(s, PostgresSource) for s in spec.sources):
                postgres_started = background.submit(
                    hosts.run, target, remote.as_root(remote.START_POSTGRES),
                    "starting PostgreSQL", timeout=120,
                )  # fmt: skip
        opened.result()
        if offsite is not None:
            bucket_name, policy, weak = offsite.result()
            _check(
                checks,
                plan,
                "preflight:object-lock",
                CONTROL_OFFSITE,
                Outcome.FAIL if weak else Outcome.PASS,
                "; ".join(weak) or "as planned",
                f"COMPLIANCE {policy.retention_days} days, versioning",
            )
            for problem in weak:
                failed = True
                report.finding(
                    "preflight",
                    f"off-site bucket {bucket_name} weakened: {problem}",
                    f"Run 'cityguard backup offsite {plan.system} --setup' and find who changed it",
                )
        rstep.detail = f"isolated: {seen}; free {free_mb} MB (need {spec.restore.min_free_mb})"
        if not isolated:
            report.finding(
                "preflight",
                f"restore target {target} can reach source services: {seen}; nothing restored",
                "Isolate the recovery segment (firewall or own bridge) so the scratch host "
                "cannot reach production",
            )
            step.fail(f"{target} reaches {seen}")
            rstep.fail()
            raise DrillFailed(f"{target} is not isolated from the sources ({seen})")
        if not enough:
            report.finding(
                "preflight",
                f"{target} has {free_mb} MB free, the plan needs {spec.restore.min_free_mb} MB",
                f"Free disk space on {target}",
            )
            step.fail(rstep.detail)
            rstep.fail()
            raise DrillFailed(f"not enough disk on {target}")
        step.detail = rstep.detail

    # latest snapshot and RPO -----------------------------------------------------------------
    with rec.step("snapshot", subject) as step, report.step("snapshot") as rstep:
        progress.step("snapshot")
        found = newest_set.result()
        if found is None:
            _check(
                checks,
                plan,
                "snapshot:rpo",
                CONTROL_RPO,
                Outcome.FAIL,
                "no backup",
                spec.targets.rpo,
            )
            report.finding(
                "snapshot",
                "no complete backup set in the repository",
                f"Run and schedule backups of {plan.system}",
            )
            step.fail("no complete backup set")
            rstep.fail()
            raise DrillFailed("no complete backup set")
        parts = _parts(spec, found)  # a set without a part fails here, in the snapshot step
        rpo_s = (report.started_at - found.taken_at).total_seconds()
        rpo_s = max(rpo_s, 0.0)
        rpo = Measurement("rpo_s", rpo_s, "s", subject, spec.targets.rpo_s, Comparison.AT_MOST)
        rec.add_measurements([rpo])
        report.measure(rpo)
        ok = bool(rpo.met)
        _check(
            checks,
            plan,
            "snapshot:rpo",
            CONTROL_RPO,
            Outcome.PASS if ok else Outcome.FAIL,
            f"{format_duration(rpo_s)} (set {found.set_id})",
            f"at most {spec.targets.rpo}",
        )
        rstep.detail = (
            f"set {found.set_id} taken {found.taken_at.isoformat()}, RPO {format_duration(rpo_s)}"
        )
        step.detail = rstep.detail
        if not ok:
            failed = True
            report.finding(
                "snapshot",
                f"RPO breached: newest backup is {format_duration(rpo_s)} old, "
                f"target {spec.targets.rpo}",
                "Check the backup schedule and why recent backups are missing",
            )
            step.fail()
            rstep.fail()

    # everything restores while the repository is checked (restic dump takes no lock, restic
    # check an exclusive one): the file trees at once, the databases once PostgreSQL runs. A
    # failed check still fails the drill, whatever the restore did meanwhile
    databases.extend(p.source.database for p in parts if isinstance(p.source, PostgresSource))
    trees = [
        background.submit(_restore_part, part, repo, hosts, target, spec.restore.directory,
                          progress)
        for part in parts
        if not isinstance(part.source, PostgresSource)
    ]  # fmt: skip
    restored_databases = background.submit(
        _restore_databases, parts, repo, hosts, target, spec.restore.directory, progress,
        postgres_started,
    )  # fmt: skip

    # repository integrity --------------------------------------------------------------------
    with rec.step("check", subject) as step, report.step("check") as rstep:
        progress.step("check")
        done_check = _restic_check(repo, spec.repository.check_subset)
        _check(
            checks,
            plan,
            "check:integrity",
            CONTROL_INTEGRITY,
            Outcome.PASS if done_check.ok else Outcome.FAIL,
            "no errors"
            if done_check.ok
            else "; ".join(done_check.messages[:3]) or f"{done_check.errors} errors",
            f"restic check --read-data-subset {spec.repository.check_subset} without errors",
        )
        if not done_check.ok:
            detail = "; ".join(done_check.messages[:3]) or f"{done_check.errors} errors"
            packs = (
                f" (broken packs: {', '.join(done_check.broken_packs)})"
                if done_check.broken_packs
                else ""
            )
            report.finding(
                "check",
                f"repository integrity check failed: {detail}{packs}",
                "Repair the repository (restic repair packs/index) and take a fresh backup",
            )
            step.fail(detail)
            rstep.fail(detail)
            raise DrillFailed("repository check failed")
        rstep.detail = f"read-data-subset {spec.repository.check_subset}: no errors"

    # restore ---------------------------------------------------------------------------------
    with rec.step("restore", subject) as step, report.step("restore") as rstep:
        progress.step("restore")
        restored = restored_databases.result() + sum(tree.result() for tree in trees)
        progress.restored(restored)
        rstep.detail = f"{restored} bytes restored onto {target}"
        step.detail = rstep.detail
        bytes_m = Measurement("bytes_restored", restored, "bytes", subject)
        rec.add_measurements([bytes_m])
        report.measure(bytes_m)

    # verification ----------------------------------------------------------------------------
    with rec.step("verify", subject) as step, report.step("verify") as rstep:
        progress.step("verify")
        wrong: list[str] = []
        for index, item in enumerate(spec.verify):
            outcome, observed, expected = _verify(item, plan, found, hosts, target)
            check_id = f"verify[{index}]:{item.kind}"
            _check(checks, plan, check_id, CONTROL_RESTORE, outcome, observed, expected)
            report.verification(check_id, outcome, observed, expected)
            if outcome is not Outcome.PASS:
                wrong.append(f"{check_id}: got {observed}, expected {expected}")
        if wrong:
            failed = True
            for line in wrong:
                report.finding(
                    "verify", line, "Find why the restored data differs and fix the backup"
                )
            step.fail("; ".join(wrong))
            rstep.fail("; ".join(wrong))
        else:
            rstep.detail = f"{len(spec.verify)} verification steps passed"

    # the data's own age: the newest row of the restored database, where the plan names one ----
    for source in spec.sources:
        if isinstance(source, PostgresSource) and source.freshness is not None:
            query = remote.freshness_query(source.freshness.table, source.freshness.column)
            done = hosts.run(
                target, remote.psql(source.database, source.port, query), "newest restored row"
            )
            newest = done.stdout.strip()
            if not newest:
                continue
            age = max((report.started_at - restic.parse_time(newest)).total_seconds(), 0.0)
            data_rpo = Measurement(
                "rpo_data_s", age, "s", subject, spec.targets.rpo_s, Comparison.AT_MOST
            )
            rec.add_measurements([data_rpo])
            report.measure(data_rpo)
            _check(
                checks,
                plan,
                f"verify:freshness:{source.name}",
                CONTROL_RPO,
                Outcome.PASS if data_rpo.met else Outcome.FAIL,
                f"newest {source.freshness.table}.{source.freshness.column} {newest}",
                f"at most {spec.targets.rpo} before the drill",
            )
            if not data_rpo.met:
                failed = True
                report.finding(
                    "verify",
                    f"RPO breached in the data: the newest row of {source.name} is "
                    f"{format_duration(age)} old, target {spec.targets.rpo}",
                    "Check that the application still writes, and the backup schedule",
                )

    # RTO --------------------------------------------------------------------------------------
    rto_s = (datetime.now(UTC) - report.started_at).total_seconds()
    rto = Measurement("rto_s", rto_s, "s", subject, spec.targets.rto_s, Comparison.AT_MOST)
    rec.add_measurements([rto])
    report.measure(rto)
    _check(
        checks,
        plan,
        "rto",
        CONTROL_RESTORE,
        Outcome.PASS if rto.met else Outcome.FAIL,
        format_duration(rto_s),
        f"at most {spec.targets.rto}",
    )
    if not rto.met:
        failed = True
        report.finding(
            "rto",
            f"RTO breached: {format_duration(rto_s)}, target {spec.targets.rto}",
            "Speed up the restore (parallel pg_restore, faster storage) or revise the target",
        )
    return ExitCode.FAILED if failed else ExitCode.OK


@dataclass(frozen=True)
class _Part:
    """One part of the backup set to restore (a database or a file tree), numbered for
    progress."""

    index: int
    total: int
    source: PostgresSource | FilesSource
    record: mf.SourceRecord


def _parts(spec: PlanFile, found: BackupSet) -> list[_Part]:
    """The parts of the backup set to restore, in the plan's order; the set must hold each."""
    parts = []
    for index, source in enumerate(spec.sources, start=1):
        record = found.manifest.sources.get(source.name)
        if record is None:
            raise DrillFailed(f"the backup set has no part {source.name}")
        parts.append(_Part(index, len(spec.sources), source, record))
    return parts


def _restore_databases(
    parts: list[_Part],
    repo: Restic,
    hosts: Hosts,
    target: str,
    directory: str,
    progress: DrillProgress,
    postgres_started: Future[Completed] | None,
) -> int:
    """Once PostgreSQL runs on the target, create the roles backed up with each database (they
    own its objects, so they come first), then restore the databases; returns the bytes
    moved."""
    databases = [part for part in parts if isinstance(part.source, PostgresSource)]
    if not databases:
        return 0
    if postgres_started is not None:
        postgres_started.result()
    moved = 0
    for part in databases:
        source, record = part.source, part.record
        assert isinstance(source, PostgresSource)
        if record.globals_snapshot and record.globals_path:
            moved += repo.stream(
                restic.dump_args(record.globals_snapshot, record.globals_path),
                hosts.ssh(target, remote.restore_globals(source.port)),
                f"restoring the roles of {source.name} on {target}",
            )
    for part in databases:
        moved += _restore_part(part, repo, hosts, target, directory, progress)
    return moved


def _restore_part(
    part: _Part, repo: Restic, hosts: Hosts, target: str, directory: str, progress: DrillProgress
) -> int:
    """Stream one part from the repository into its program on the target (pg_restore into a
    fresh database; tar into the drill directory); returns the bytes moved."""
    source, record = part.source, part.record
    progress.part(source.name, part.index, part.total, 0)
    if isinstance(source, PostgresSource):
        consumer = remote.restore_database(source.database, source.port)
        what = f"restoring {source.database} on {target} (restic dump | pg_restore)"
    else:
        consumer = remote.extract_tar(f"{directory}/{source.name}")
        what = f"restoring {source.name} on {target} (restic dump | tar)"
    return repo.stream(
        restic.dump_args(record.snapshot, record.path),
        hosts.ssh(target, consumer),
        what,
        on_bytes=progress.streaming(source.name, part.index, part.total),
    )


def _weakened_lock(plan: Plan) -> tuple[str, LockPolicy, list[str]]:
    """The off-site bucket's name, the lock the plan asks for, and how the bucket's is weaker."""
    bucket, policy = offsite_bucket(plan)
    return bucket.name, policy, lock_problems(bucket.observed(), policy)


def _restic_check(repo: Restic, subset: str) -> restic.CheckSummary:
    try:
        done = repo.run(restic.check_args(subset), "checking the repository")
    except restic.RepositoryLocked:
        raise
    except restic.ResticError as error:
        if error.returncode == 1:  # check found errors; its details are in the output
            return restic.CheckSummary(1, (), (str(error).split(": ", 1)[-1],))
        raise
    return restic.parse_check(done.stdout, done.stderr)


def _isolation_targets(plan: Plan) -> list[tuple[str, int]]:
    ports: dict[str, set[int]] = {}
    for source in plan.spec.sources:
        found = ports.setdefault(source.host, set(plan.spec.restore.isolation_ports))
        if isinstance(source, PostgresSource):
            found.add(source.port)
    return [(host, port) for host in sorted(ports) for port in sorted(ports[host])]


def _verify(
    item: Any, plan: Plan, found: BackupSet, hosts: Hosts, target: str
) -> tuple[Outcome, str, str]:
    kind = item.kind
    try:
        if kind == "sql":
            source = plan.source(item.source)
            assert isinstance(source, PostgresSource)
            done = hosts.run(
                target,
                remote.psql(source.database, source.port, item.query),
                "running a verification query",
                check=False,
            )
            if not done.ok:
                return (
                    Outcome.FAIL,
                    f"query failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}",
                    item.expect,
                )
            observed = done.stdout.strip()
            return (
                (Outcome.PASS if observed == item.expect.strip() else Outcome.FAIL),
                observed,
                item.expect,
            )
        if kind == "row-counts":
            source = plan.source(item.source)
            assert isinstance(source, PostgresSource)
            expected = found.manifest.sources[source.name].row_counts
            done = hosts.run(
                target,
                remote.psql(source.database, source.port, remote.row_counts_query(list(expected))),
                "counting restored rows",
            )
            observed_counts = remote.parse_row_counts(done.stdout)
            diffs = mf.count_differences(expected, observed_counts)
            text = ", ".join(f"{t}={n}" for t, n in sorted(observed_counts.items()))
            return (
                (Outcome.FAIL if diffs else Outcome.PASS),
                ("; ".join(diffs) or text),
                "counts at backup time",
            )
        if kind == "file-hashes":
            source = plan.source(item.source)
            expected_hashes = found.manifest.sources[source.name].hashes
            if not expected_hashes:
                return Outcome.FAIL, "no hashes recorded at backup time", "a sample of hashes"
            directory = f"{plan.spec.restore.directory}/{source.name}"
            done = hosts.run(
                target,
                remote.hashes_under(directory, sorted(expected_hashes)),
                "hashing restored files",
            )
            observed_hashes = {
                "/" + p.removeprefix("./"): d
                for p, d in remote.parse_sha256sum(done.stdout).items()
            }
            diffs = mf.hash_differences(expected_hashes, observed_hashes)
            return (
                (Outcome.FAIL if diffs else Outcome.PASS),
                ("; ".join(diffs[:5]) or f"{len(expected_hashes)} files match"),
                f"{len(expected_hashes)} hashes from backup time",
            )
        if kind == "tcp":
            done = hosts.run(
                target,
                remote.probe_ports([("127.0.0.1", item.port)]),
                "probing the restored service",
            )
            ok = bool(remote.parse_open(done.stdout))
            return (
                (Outcome.PASS if ok else Outcome.FAIL),
                ("open" if ok else "closed"),
                f"port {item.port} open",
            )
        if kind == "http":
            done = hosts.run(
                target, remote.http_status(item.port, item.path), "probing the restored service"
            )
            observed = done.stdout.strip()
            return (
                (Outcome.PASS if observed == str(item.status) else Outcome.FAIL),
                observed,
                str(item.status),
            )
    except ProcessError as error:
        return Outcome.ERROR, str(error), "a result"
    raise ValueError(f"unknown verification kind {kind}")


def _teardown(
    rec: Recorder,
    report: DrillReport,
    plan: Plan,
    hosts: Hosts,
    paths: list[str],
    databases: list[str],
    subject: Subject,
) -> None:
    port = next((s.port for s in plan.spec.sources if isinstance(s, PostgresSource)), 5432)
    try:
        with rec.step("teardown", subject), report.step("teardown"):
            hosts.run(
                plan.spec.restore.target,
                remote.teardown(databases, port, paths),
                "tearing down",
                timeout=300,
            )
    except CityguardError as error:
        report.finding(
            "teardown", f"teardown failed: {error}", f"Clean {plan.spec.restore.target} by hand"
        )
