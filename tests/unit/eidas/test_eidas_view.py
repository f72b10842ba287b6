"""What `cityguard eidas plan|apply|verify|export` show: tables and diffs for people, JSON for
machines, secrets as (secret) in both."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from cityguard.config import content_root
from cityguard.core.exitcodes import ExitCode
from cityguard.core.records import roll_up_all
from cityguard.eidas.action import EidasOutcome
from cityguard.eidas.desired import desired_state
from cityguard.eidas.plan import Plan, make_plan
from cityguard.eidas.realm import load_realm_file
from cityguard.eidas.rules import RULES, evaluate
from cityguard.eidas.view import as_json, show

EXAMPLE = content_root() / "eidas" / "realm.yml"
SECRET = "portal-Secret-never-shown"


def rendered(outcome: EidasOutcome, fmt: str = "table") -> str:
    out = io.StringIO()
    show(Console(file=out, width=300), outcome, fmt)
    return out.getvalue()


def create_plan() -> Plan:
    """The plan for an empty Keycloak: everything created, the client's secret among it."""
    return make_plan(desired_state(load_realm_file(EXAMPLE), {"eservice-portal": SECRET}), {})


def results(drift: bool = False) -> list:  # type: ignore[type-arg]
    desired = desired_state(load_realm_file(EXAMPLE), {"eservice-portal": SECRET})
    live = {key: dict(fields) for key, fields in desired.objects.items()}
    live["flow:eidas first broker login"]["all_providers"] = ["idp-create-user-if-unique"]
    if drift:
        live["idp:eidas"]["config.signatureAlgorithm"] = "RSA_SHA1"
    controls = [rule.control for rule in RULES]
    return roll_up_all(evaluate("eservices", "eidas", "eidas-node", live, {}, controls))


def test_plan_shows_each_object_and_field_and_the_count_never_the_secret() -> None:
    plan = create_plan()
    text = rendered(EidasOutcome("run-1", "plan", "eservices", ExitCode.OK, plan=plan))
    assert "+ realm" in text and "+ idp:eidas" in text and "+ client:eservice-portal" in text
    assert '    config.signatureAlgorithm: (none) -> "RSA_SHA256_MGF1"' in text
    assert "secret: (none) -> (secret)" in text
    assert f"{plan.count()} object(s) would change" in text
    assert "run run-1" in text
    assert SECRET not in text


def test_apply_says_changed_and_an_empty_plan_says_no_changes() -> None:
    plan = create_plan()
    text = rendered(EidasOutcome("run-2", "apply", "eservices", ExitCode.OK, plan=plan))
    assert f"{plan.count()} object(s) changed" in text
    again = rendered(
        EidasOutcome("run-3", "apply", "eservices", ExitCode.OK, plan=Plan("eservices", ()))
    )
    assert "realm eservices: no changes" in again and "0 object(s) changed" in again


def test_plan_as_json_lists_the_changes_with_their_fields() -> None:
    plan = create_plan()
    outcome = EidasOutcome("run-4", "plan", "eservices", ExitCode.OK, plan=plan)
    document = json.loads(rendered(outcome, "json"))
    assert document == as_json(outcome)
    assert document["command"] == "plan" and document["exit_code"] == 0
    assert len(document["changes"]) == plan.count()
    idp = next(c for c in document["changes"] if c["object"] == "idp:eidas")
    assert idp["action"] == "create"
    assert 'config.wantAssertionsSigned: (none) -> "true"' in idp["fields"]
    assert SECRET not in json.dumps(document)


def test_verify_shows_one_row_per_rule_with_outcome_and_observed_value() -> None:
    found = results(drift=True)
    outcome = EidasOutcome("run-5", "verify", "eservices", ExitCode.FAILED, results=found)
    text = rendered(outcome)
    assert "eIDAS rules: realm eservices" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "CG-EIDAS-" in line}
    assert len(rows) == len(RULES)
    assert "fail" in rows["CG-EIDAS-002"] and "RSA_SHA1" in rows["CG-EIDAS-002"]
    assert "identity-provider:eservices/eidas" in rows["CG-EIDAS-002"]
    assert "pass" in rows["CG-EIDAS-011"] and "realm:eservices" in rows["CG-EIDAS-011"]
    assert "fail" in rows["CG-EIDAS-014"]  # the known gap, shown like any failure

    document = json.loads(rendered(outcome, "json"))
    assert document["exit_code"] == 1 and "changes" not in document
    by_control = {r["control"]: r for r in document["results"]}
    assert by_control["CG-EIDAS-002"]["outcome"] == "fail"
    assert by_control["CG-EIDAS-002"]["observed"] == "RSA_SHA1"
    assert by_control["CG-EIDAS-002"]["expected"] == "RSA_SHA256_MGF1 or RSA_SHA512_MGF1"
    assert by_control["CG-EIDAS-007"]["subject"] == "identity-provider:eservices/eidas"


def test_verify_names_the_rules_its_baseline_leaves_out() -> None:
    level1 = [r for r in results() if r.control_id not in ("CG-EIDAS-014", "CG-EIDAS-015")]
    gap = ("CG-EIDAS-014", "Assertions below the requested level of assurance are refused")
    outcome = EidasOutcome(
        "run-7",
        "verify",
        "eservices",
        ExitCode.OK,
        results=level1,
        baseline="eidas-broker",
        not_judged=(gap,),
    )
    text = rendered(outcome)
    assert "eIDAS rules not judged by baseline eidas-broker:" in text
    assert f"  {gap[0]}  {gap[1]}" in text
    document = json.loads(rendered(outcome, "json"))
    assert document["baseline"] == "eidas-broker"
    assert document["not_judged"] == [{"control": gap[0], "title": gap[1]}]
    everything = EidasOutcome(
        "run-8", "verify", "eservices", ExitCode.FAILED, results=results(), baseline="strict"
    )
    assert "not judged" not in rendered(everything)
    assert json.loads(rendered(everything, "json"))["not_judged"] == []


def test_export_names_the_file() -> None:
    outcome = EidasOutcome(
        "run-6", "export", "eservices", ExitCode.OK, export_path=Path("/s/realm-eservices.json")
    )
    assert "exported to /s/realm-eservices.json" in rendered(outcome)
    assert json.loads(rendered(outcome, "json"))["export"] == "/s/realm-eservices.json"
