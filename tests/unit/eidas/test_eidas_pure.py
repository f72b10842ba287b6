"""The eIDAS area's pure parts: realm file validation, desired state, plan, rules, settings."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from cityguard.config import content_root
from cityguard.config.errors import ConfigError
from cityguard.core.records import Outcome
from cityguard.eidas.desired import FIRST_BROKER_FLOW, Secret, desired_state
from cityguard.eidas.plan import Action, make_plan
from cityguard.eidas.realm import load_realm_file
from cityguard.eidas.rules import RULES, evaluate
from cityguard.eidas.settings import EidasSettings, is_loopback_url

EXAMPLE = content_root() / "eidas" / "realm.yml"
LEVEL1 = [r.control for r in RULES if r.control not in ("CG-EIDAS-014", "CG-EIDAS-015")]


def realm_copy(tmp_path: Path, change: dict[str, object] | None = None) -> Path:
    shutil.copytree(EXAMPLE.parent / "certs", tmp_path / "certs")
    data = yaml.safe_load(EXAMPLE.read_text())
    for dotted, value in (change or {}).items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / "realm.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def live_from(desired: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """A live state equal to the desired one, as Keycloak would return it."""
    live: dict[str, dict[str, object]] = {}
    for key, fields in desired.items():
        live[key] = {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in fields.items()}
    flow = live[f"flow:{FIRST_BROKER_FLOW}"]
    flow["all_providers"] = ["idp-create-user-if-unique"]
    return live


def test_the_example_realm_file_is_valid() -> None:
    spec = load_realm_file(EXAMPLE)
    assert spec.name == "eservices"
    assert spec.signing_certificate and spec.certificate_not_after > datetime.now(UTC)
    assert "eservice-portal" in spec.client_secrets


def test_every_problem_of_a_bad_realm_file_is_one_located_line(tmp_path: Path) -> None:
    path = realm_copy(
        tmp_path,
        {
            "identity_provider.signature_algorithm": "RSA_SHA1",
            "identity_provider.sso_url": None,
            "identity_provider.allowed_clock_skew_s": 3600,
            "clients.0.redirect_uris": ["https://e.example.invalid/*"],
            "security.colour": "blue",
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_realm_file(path, "realm.yml")
    lines = caught.value.lines()
    assert len(lines) == 5, lines
    assert all(line.startswith("realm.yml:") for line in lines)
    text = "\n".join(lines)
    assert "RSA_SHA1 is not allowed by the eIDAS profile" in text
    assert "identity_provider.sso_url: required key is missing" in text
    assert "identity_provider.allowed_clock_skew_s" in text
    assert "wildcard" in text and "security.colour: unknown key" in text


def test_missing_mandatory_attribute_and_missing_certificate_are_refused(tmp_path: Path) -> None:
    path = realm_copy(
        tmp_path,
        {
            "identity_provider.attributes": {"PersonIdentifier": "personIdentifier"},
            "identity_provider.signing_certificate_file": "certs/none.pem",
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_realm_file(path)
    text = str(caught.value)
    assert "mandatory eIDAS attribute not imported: CurrentFamilyName" in text
    assert "file not found" in text


def test_desired_state_fixes_what_the_profile_requires() -> None:
    desired = desired_state(load_realm_file(EXAMPLE), {"eservice-portal": "s3cret"})
    idp = desired.objects["idp:eidas"]
    assert idp["config.principalType"] == "ATTRIBUTE"
    assert idp["config.principalAttribute"].endswith("/PersonIdentifier")
    assert json.loads(idp["config.authnContextClassRefs"]) == [
        "http://eidas.europa.eu/LoA/substantial"
    ]
    assert idp["firstBrokerLoginFlowAlias"] == FIRST_BROKER_FLOW
    assert desired.objects["realm"]["duplicateEmailsAllowed"] is True
    assert len([k for k in desired.objects if k.startswith("idp-mapper:")]) == 4
    assert repr(desired.objects["client:eservice-portal"]["secret"]) == "(secret)"


def test_plan_is_empty_on_equal_state_and_names_each_drifted_field() -> None:
    desired = desired_state(load_realm_file(EXAMPLE), {"eservice-portal": "s3cret"})
    live = live_from(desired.objects)
    assert make_plan(desired, live).empty
    live["idp:eidas"]["config.validateSignature"] = "false"
    del live["idp-mapper:eidas/DateOfBirth"]
    live["idp-mapper:eidas/Stray"] = {"identityProviderMapper": "hardcoded-attribute-idp-mapper"}
    live["client:eservice-portal"]["secret"] = "other"
    plan = make_plan(desired, live)
    by_key = {c.key: c for c in plan.changes}
    assert by_key["idp:eidas"].action is Action.UPDATE
    assert [f.field for f in by_key["idp:eidas"].fields] == ["config.validateSignature"]
    assert by_key["idp-mapper:eidas/DateOfBirth"].action is Action.CREATE
    assert by_key["idp-mapper:eidas/Stray"].action is Action.DELETE
    secret_diff = by_key["client:eservice-portal"].diff()
    assert "(secret)" in secret_diff and "s3cret" not in secret_diff and "other" not in secret_diff


def test_rules_pass_on_the_desired_state_and_fail_on_drift() -> None:
    spec = load_realm_file(EXAMPLE)
    live = live_from(desired_state(spec).objects)
    results = evaluate("eservices", "eidas", "eidas-node", live, {}, LEVEL1)
    assert len(results) == 13
    assert all(r.outcome is Outcome.PASS for r in results), [
        (r.controls, r.observed) for r in results if r.outcome is not Outcome.PASS
    ]
    live["idp:eidas"]["config.signatureAlgorithm"] = "RSA_SHA1"
    live["idp:eidas"]["config.principalType"] = "SUBJECT"
    live["idp:eidas"]["config.allowedClockSkew"] = "600"
    live["realm"]["bruteForceProtected"] = False
    failed = {
        r.controls[0]: r.observed
        for r in evaluate("eservices", "eidas", "eidas-node", live, {}, LEVEL1)
        if r.outcome is Outcome.FAIL
    }
    assert set(failed) == {"CG-EIDAS-002", "CG-EIDAS-007", "CG-EIDAS-010", "CG-EIDAS-011"}
    assert failed["CG-EIDAS-002"] == "RSA_SHA1"
    assert "brute-force detection off" in failed["CG-EIDAS-011"]


def test_known_keycloak_gaps_are_reported_as_failures() -> None:
    live = live_from(desired_state(load_realm_file(EXAMPLE)).objects)
    gaps = evaluate("r", "eidas", "eidas-node", live, {}, ["CG-EIDAS-014", "CG-EIDAS-015"])
    assert [r.outcome for r in gaps] == [Outcome.FAIL, Outcome.FAIL]
    assert "AuthnContextClassRef" in (gaps[0].observed or "")


def test_a_missing_realm_fails_every_rule_with_the_reason() -> None:
    results = evaluate("gone", "eidas", "eidas-node", {}, {}, LEVEL1)
    assert {r.outcome for r in results} == {Outcome.FAIL}
    assert all("does not exist" in (r.observed or "") for r in results)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:8080", True),
        ("https://localhost", True),
        ("http://10.0.0.1:8080", False),
        ("https://keycloak.example.org", False),
        ("ftp://127.0.0.1", False),
    ],
)
def test_keycloak_only_on_loopback(url: str, ok: bool) -> None:
    assert is_loopback_url(url) is ok


def test_settings_need_exactly_one_password_source() -> None:
    base = {"url": "http://127.0.0.1:8080", "admin_user": "a", "realm_file": "realm.yml"}
    with pytest.raises(ValueError, match="exactly one"):
        EidasSettings.model_validate(base)
    with pytest.raises(ValueError, match="exactly one"):
        EidasSettings.model_validate(
            {**base, "admin_password_env": "X", "admin_password_file": "/f"}
        )
    assert EidasSettings.model_validate({**base, "admin_password_env": "X"}).baseline == (
        "eidas-broker"
    )
