"""Orchestrates `cityguard eidas plan|apply|verify|export`: realm file, Keycloak, evidence.

Only orchestration: the realm file is validated first (nothing is sent when it is wrong), the
admin password is read when Keycloak is called, and every run is recorded: plan and apply record
one Change per object (apply: what it changed; plan: what it would), verify one control result
per eIDAS rule with the observed value, export the realm export as an artifact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.catalog import load_baseline, select
from cityguard.config.errors import ConfigError, ConfigProblem
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import (
    Change,
    ControlResult,
    Measurement,
    Subject,
    SubjectKind,
    roll_up_all,
)
from cityguard.eidas.desired import Desired, desired_state
from cityguard.eidas.keycloak import Connection, Keycloak
from cityguard.eidas.plan import ObjectChange, Plan, make_plan
from cityguard.eidas.realm import RealmSpec, load_realm_file
from cityguard.eidas.rules import RULES, evaluate
from cityguard.eidas.settings import EidasSettings
from cityguard.workspace import Workspace, connected_inventory

SECTION = "eidas"

#: Which control an object change serves, for the Change records.
CONTROL_OF_OBJECT = {
    "realm": "CG-EIDAS-011",
    "user-profile": "CG-EIDAS-012",
    "flow": "CG-EIDAS-008",
    "idp": "CG-EIDAS-005",
    "idp-mapper": "CG-EIDAS-006",
    "client": "CG-EIDAS-013",
    "client-mapper": "CG-EIDAS-013",
}


@dataclass(frozen=True)
class EidasOutcome:
    run_id: str
    command: str
    realm: str
    exit_code: ExitCode
    plan: Plan | None = None
    results: list[ControlResult] = field(default_factory=list)
    export_path: Path | None = None
    seconds: float = 0.0
    baseline: str = ""
    #: eIDAS rules of the catalog the baseline leaves out (id, title): shown, never silent
    not_judged: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EidasContext:
    workspace: Workspace
    settings: EidasSettings
    spec: RealmSpec


def open_eidas(site_path: Path) -> EidasContext:
    """Load the site, its eidas section and the realm file; every problem at once (exit 2)."""
    from cityguard.catalog import load_catalog
    from cityguard.config import load_site

    site = load_site(site_path)
    settings = site.section(SECTION, EidasSettings)
    if settings is None:
        raise ConfigError(
            [
                ConfigProblem(
                    site.display or str(site.path),
                    None,
                    SECTION,
                    "no eidas section: add one (cityguard schema site) to use cityguard eidas",
                )
            ]
        )
    policies = site.content_dir / "policies"
    catalog = load_catalog(policies)
    baseline = load_baseline(policies, settings.baseline, catalog)
    selection = select(catalog, baseline, site.parameters, None)
    realm_path = settings.realm_path(site.root)
    shown = str(Path(site.display or site.path).parent / settings.realm_file)
    spec = load_realm_file(realm_path, shown)
    workspace = Workspace(site, catalog, selection, connected_inventory(site))
    return EidasContext(workspace, settings, spec)


def connect(ctx: EidasContext) -> Keycloak:
    site = ctx.workspace.site
    ref = site.secret_ref((SECTION,), ctx.settings, "admin_password")
    assert ref is not None  # the section requires exactly one source
    connection = Connection(
        ctx.settings.url,
        ctx.settings.admin_realm,
        ctx.settings.admin_user,
        ref.reveal(),
        ctx.settings.timeout_s,
    )
    return Keycloak(connection)


def desired_of(ctx: EidasContext) -> Desired:
    secrets = {client_id: ref.reveal() for client_id, ref in ctx.spec.client_secrets.items()}
    return desired_state(ctx.spec, secrets)


def _subject(ctx: EidasContext, change: ObjectChange) -> Subject:
    realm = ctx.spec.name
    if change.kind in ("idp", "idp-mapper"):
        alias = change.name.partition("/")[0]
        return Subject(SubjectKind.IDENTITY_PROVIDER, f"{realm}/{alias}")
    return Subject(SubjectKind.REALM, realm)


def changes_of(ctx: EidasContext, plan: Plan) -> list[Change]:
    return [
        Change(_subject(ctx, c), CONTROL_OF_OBJECT.get(c.kind), f"{c.action} {c.key}", c.diff())
        for c in plan.changes
    ]


def _subjects(ctx: EidasContext) -> list[str]:
    alias = ctx.spec.model.identity_provider.alias
    return [ctx.spec.name, f"{ctx.spec.name}/{alias}"]


def _record(ctx: EidasContext, command: str, run_dir: Path) -> Any:
    return ctx.workspace.record(command, _subjects(ctx), run_dir, ctx.workspace.selection)


def plan(ctx: EidasContext) -> EidasOutcome:
    """What apply would change; changes nothing."""
    run_dir = ctx.workspace.new_run_dir("eidas-plan")
    with _record(ctx, "eidas plan", run_dir) as rec:
        desired = desired_of(ctx)
        keycloak = connect(ctx)
        result = make_plan(desired, keycloak.live_state(desired))
        rec.add_changes(changes_of(ctx, result))
        (run_dir / "plan.txt").write_text(render_plan_text(result))
        rec.finish(ExitCode.OK, {"realm": ctx.spec.name, "pending": result.count()})
    return EidasOutcome(rec.run_id, "plan", ctx.spec.name, ExitCode.OK, plan=result)


def apply(ctx: EidasContext) -> EidasOutcome:
    """Make the realm as the realm file says; each change recorded; then read back."""
    run_dir = ctx.workspace.new_run_dir("eidas-apply")
    started = datetime.now(UTC)
    with _record(ctx, "eidas apply", run_dir) as rec:
        desired = desired_of(ctx)
        keycloak = connect(ctx)
        result = make_plan(desired, keycloak.live_state(desired))
        done: list[ObjectChange] = []
        try:
            for change in result.changes:
                keycloak.apply(ctx.spec.name, change, desired)
                done.append(change)
        finally:
            rec.add_changes(changes_of(ctx, Plan(result.realm, tuple(done))))
        left = make_plan(desired, keycloak.live_state(desired))
        seconds = (datetime.now(UTC) - started).total_seconds()
        realm = Subject(SubjectKind.REALM, ctx.spec.name)
        rec.add_measurements(
            [
                Measurement("changes", float(len(done)), "count", realm),
                Measurement("apply_s", round(seconds, 3), "s", realm),
            ]
        )
        (run_dir / "applied.txt").write_text(render_plan_text(Plan(result.realm, tuple(done))))
        code = ExitCode.OK if left.empty else ExitCode.PARTIAL
        summary = {"realm": ctx.spec.name, "changes": len(done), "left": left.count()}
        if not left.empty:
            summary["not_taken"] = [c.key for c in left.changes]
        rec.finish(code, summary)
    return EidasOutcome(
        rec.run_id,
        "apply",
        ctx.spec.name,
        code,
        plan=Plan(result.realm, tuple(done)),
        seconds=seconds,
    )


def verify(ctx: EidasContext) -> EidasOutcome:
    """One result per eIDAS rule of the baseline, judged on the live realm."""
    run_dir = ctx.workspace.new_run_dir("eidas-verify")
    selection = ctx.workspace.selection
    controls = [c.id for c in selection.of(scope="realm", verifier="eidas-rules")]
    with ctx.workspace.record("eidas verify", _subjects(ctx), run_dir, selection) as rec:
        keycloak = connect(ctx)
        live = keycloak.live_state(desired_of(ctx))
        checks = evaluate(
            ctx.spec.name,
            ctx.spec.model.identity_provider.alias,
            ctx.spec.model.profile,
            live,
            selection.parameters,
            controls,
            metadata_valid_until=ctx.spec.node.metadata_valid_until,
        )
        results = roll_up_all(checks)
        rec.add_check_results(checks)
        rec.add_control_results(results)
        failed = [r.control_id for r in results if r.outcome.value in ("fail", "error")]
        code = ExitCode.FAILED if failed else ExitCode.OK
        left_out = not_judged(ctx, controls)
        rec.finish(
            code,
            {
                "realm": ctx.spec.name,
                "rules": len(results),
                "failed": failed,
                "not_judged": [control for control, _ in left_out],
            },
        )
    return EidasOutcome(
        rec.run_id,
        "verify",
        ctx.spec.name,
        code,
        results=results,
        baseline=selection.baseline,
        not_judged=left_out,
    )


def not_judged(ctx: EidasContext, judged: list[str]) -> tuple[tuple[str, str], ...]:
    """The catalog's eIDAS rules the baseline does not select (the known gaps of stock Keycloak
    under the default baseline): verify names them rather than leave them unsaid."""
    return tuple(
        (control.id, control.title)
        for control in sorted(ctx.workspace.catalog.controls.values(), key=lambda c: c.id)
        if control.scope == "realm"
        and control.verifier == "eidas-rules"
        and control.id not in judged
    )


def export(ctx: EidasContext) -> EidasOutcome:
    """The realm's export (secrets masked by Keycloak) into the run directory, as an artifact."""
    run_dir = ctx.workspace.new_run_dir("eidas-export")
    with _record(ctx, "eidas export", run_dir) as rec:
        keycloak = connect(ctx)
        if not keycloak.realm_exists(ctx.spec.name):
            raise ConfigError(
                [
                    ConfigProblem(
                        ctx.spec.file,
                        None,
                        "realm",
                        f"realm {ctx.spec.name} does not "
                        "exist in Keycloak: nothing to export (run cityguard eidas apply)",
                    )
                ]
            )
        document = keycloak.export(ctx.spec.name)
        path = run_dir / f"realm-{ctx.spec.name}.json"
        path.write_text(json.dumps(document, indent=2, sort_keys=True))
        rec.finish(ExitCode.OK, {"realm": ctx.spec.name, "export": path.name})
    return EidasOutcome(rec.run_id, "export", ctx.spec.name, ExitCode.OK, export_path=path)


def render_plan_text(result: Plan) -> str:
    if result.empty:
        return f"realm {result.realm}: no changes\n"
    return "\n".join(c.diff() for c in result.changes) + "\n"


__all__ = ["RULES", "EidasOutcome", "apply", "export", "open_eidas", "plan", "verify"]
