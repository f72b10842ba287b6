"""`cityguard eidas` against a real Keycloak 26: realm as code, idempotence, drift, bad input,
secrets kept out of output and evidence, export. One realm, the tests run in file order."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from eidas_support import PORTAL_SECRET_ENV, example_realm, make_site, run_cli
from keycloak_server import KeycloakServer

from cityguard.config import load_site
from cityguard.eidas.keycloak import Connection, Keycloak
from cityguard.evidence import open_store

pytestmark = pytest.mark.integration

REALM = "eservices-test"
PORTAL_SECRET = "portal-Secret-4711-not-for-output"


@pytest.fixture(scope="module")
def site(keycloak: KeycloakServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("eidas")
    state = tmp_path_factory.mktemp("eidas-state")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYGUARD_STATE", str(state))
        env.setenv(PORTAL_SECRET_ENV, PORTAL_SECRET)
        yield make_site(directory, keycloak, example_realm(directory, keycloak, REALM))


@pytest.fixture(scope="module")
def admin(keycloak: KeycloakServer) -> Keycloak:
    return Keycloak(
        Connection(keycloak.url, "master", keycloak.admin_user, keycloak.admin_password)
    )


def evidence(site: Path):  # type: ignore[no-untyped-def]
    loaded = load_site(site)
    return open_store(loaded.state_dir, None)


def test_plan_shows_the_realm_then_apply_creates_it_and_records_each_change(
    site: Path, admin: Keycloak
) -> None:
    planned = run_cli("eidas", "plan", "--site", str(site))
    assert planned.code == 0, planned.err
    assert "+ realm" in planned.out and "+ idp:eidas" in planned.out
    assert not admin.realm_exists(REALM), "plan must change nothing"

    applied = run_cli("eidas", "apply", "--site", str(site), "--format", "json")
    assert applied.code == 0, applied.err
    document = json.loads(applied.out)
    assert len(document["changes"]) >= 10
    with evidence(site) as store:
        changes = store.changes(document["run_id"])
    assert len(changes) == len(document["changes"])
    kinds = {c.subject.kind.value for c in changes}
    assert kinds == {"realm", "identity-provider"}
    assert any(c.control_id == "CG-EIDAS-006" for c in changes)


def test_second_apply_changes_nothing_quickly(site: Path) -> None:
    started = time.monotonic()
    again = run_cli("eidas", "apply", "--site", str(site), "--format", "json")
    seconds = time.monotonic() - started
    assert again.code == 0, again.err
    assert json.loads(again.out)["changes"] == []
    assert seconds < 5, f"second apply took {seconds:.1f} s"
    assert "no changes" in run_cli("eidas", "plan", "--site", str(site)).out


def test_verify_records_one_result_per_rule_with_the_observed_value(site: Path) -> None:
    verified = run_cli("eidas", "verify", "--site", str(site), "--format", "json")
    assert verified.code == 0, verified.out
    document = json.loads(verified.out)
    assert len(document["results"]) == 13
    assert all(r["outcome"] == "pass" for r in document["results"])
    with evidence(site) as store:
        results = store.control_results(document["run_id"])
    assert len(results) == 13
    by_id = {r.control_id: r for r in results}
    assert "RSA_SHA256_MGF1" in by_id["CG-EIDAS-002"].observed
    assert by_id["CG-EIDAS-011"].subject_kind.value == "realm"
    assert by_id["CG-EIDAS-007"].subject_kind.value == "identity-provider"


def test_drift_by_hand_shows_in_plan_fails_verify_and_apply_repairs_it(
    site: Path, admin: Keycloak
) -> None:
    base = f"admin/realms/{REALM}/identity-provider/instances"
    idp = admin.get(f"{base}/eidas")
    idp["config"]["validateSignature"] = "false"
    idp["config"]["signatureAlgorithm"] = "RSA_SHA1"
    idp["firstBrokerLoginFlowAlias"] = "first broker login"  # Keycloak's own: links by email
    admin.put(f"{base}/eidas", idp)
    mapper = next(m for m in admin.get(f"{base}/eidas/mappers") if m["name"] == "DateOfBirth")
    admin.delete(f"{base}/eidas/mappers/{mapper['id']}")
    planned = run_cli("eidas", "plan", "--site", str(site))
    assert planned.code == 0
    assert 'config.validateSignature: "false" -> "true"' in planned.out
    assert 'config.signatureAlgorithm: "RSA_SHA1" -> "RSA_SHA256_MGF1"' in planned.out
    assert "+ idp-mapper:eidas/DateOfBirth" in planned.out
    assert "firstBrokerLoginFlowAlias" in planned.out

    verified = run_cli("eidas", "verify", "--site", str(site), "--format", "json")
    assert verified.code == 1
    failed = {r["control"] for r in json.loads(verified.out)["results"] if r["outcome"] == "fail"}
    assert failed == {"CG-EIDAS-002", "CG-EIDAS-005", "CG-EIDAS-006", "CG-EIDAS-008"}

    assert run_cli("eidas", "apply", "--site", str(site)).code == 0
    assert run_cli("eidas", "verify", "--site", str(site)).code == 0
    assert "no changes" in run_cli("eidas", "plan", "--site", str(site)).out


def test_bad_realm_file_gives_one_line_per_problem_and_changes_nothing(
    site: Path, admin: Keycloak, keycloak: KeycloakServer, tmp_path: Path
) -> None:
    realm = yaml.safe_load((site.parent / "realm.yml").read_text())
    realm["realm"] = "never-created"
    idp = realm["identity_provider"]
    idp["signature_algorithm"] = "RSA_SHA999"
    del idp["sso_url"]
    idp["attributes"] = {"PersonIdentifier": "personIdentifier", "Nickname": "nick"}
    realm["clients"][0]["redirect_uris"] = ["https://e.example.invalid/*"]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "certs").mkdir()
    (bad_dir / "certs" / "example-node-signing.pem").write_text("not a certificate\n")
    bad_site = make_site(bad_dir, keycloak, realm)
    before = admin.get("admin/realms")
    result = run_cli("eidas", "apply", "--site", str(bad_site))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 5, result.err
    assert all(line.startswith(str(bad_dir / "realm.yml") + ":") for line in lines)
    assert "Traceback" not in result.err
    text = result.err
    assert "identity_provider.sso_url: required key is missing" in text
    assert "RSA_SHA999" in text and "Nickname" in text and "wildcard" in text
    assert "not a PEM X.509 certificate" in text
    assert admin.get("admin/realms") == before
    assert not admin.realm_exists("never-created")


def test_export_writes_the_realm_as_an_artifact(site: Path) -> None:
    exported = run_cli("eidas", "export", "--site", str(site), "--format", "json")
    assert exported.code == 0, exported.err
    document = json.loads(exported.out)
    path = Path(document["export"])
    assert json.loads(path.read_text())["realm"] == REALM
    with evidence(site) as store:
        artifacts = store.artifacts(document["run_id"])
    assert any(a.path.endswith(path.name) for a in artifacts)


def test_no_secret_in_output_run_files_or_evidence(site: Path, keycloak: KeycloakServer) -> None:
    outputs = [
        run_cli("eidas", command, "--site", str(site), "--format", fmt)
        for command in ("plan", "apply", "verify")
        for fmt in ("table", "json")
    ]
    secrets = [keycloak.admin_password, PORTAL_SECRET]
    for result in outputs:
        for secret in secrets:
            assert secret not in result.out and secret not in result.err
    state = load_site(site).state_dir
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "evidence.sqlite" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:3]}... found in {path}"
    with sqlite3.connect(state / "evidence.sqlite") as db:
        dump = "\n".join(db.iterdump())
    for secret in secrets:
        assert secret not in dump


def test_a_node_given_by_its_metadata_is_applied_and_verified(
    admin: Keycloak, keycloak: KeycloakServer, tmp_path: Path
) -> None:
    """The stand-in node is a realm of the session's Keycloak; its SAML IdP descriptor is the
    node's metadata, saved as a file (then read from its URL: the same realm, no changes)."""
    node = "eidas-metadata-node"
    admin.post("admin/realms", {"realm": node, "enabled": True})
    descriptor = f"{keycloak.url}/realms/{node}/protocol/saml/descriptor"
    with urllib.request.urlopen(descriptor, timeout=30) as answer:
        (tmp_path / "node-metadata.xml").write_bytes(answer.read())
    realm = example_realm(tmp_path, keycloak, "eservices-metadata")
    idp = realm["identity_provider"]
    for key in ("idp_entity_id", "sso_url", "signing_certificate_file"):
        del idp[key]
    idp["metadata"] = {"file": "node-metadata.xml"}
    site = make_site(tmp_path, keycloak, realm)

    applied = run_cli("eidas", "apply", "--site", str(site))
    assert applied.code == 0, applied.err
    live = admin.get("admin/realms/eservices-metadata/identity-provider/instances/eidas")
    assert live["config"]["idpEntityId"] == f"{keycloak.url}/realms/{node}"
    assert live["config"]["singleSignOnServiceUrl"] == f"{keycloak.url}/realms/{node}/protocol/saml"
    signing = [
        key["certificate"]
        for key in admin.get(f"admin/realms/{node}/keys")["keys"]
        if key.get("use") == "SIG" and key.get("certificate")
    ]
    assert live["config"]["signingCertificate"].split(",")[0] in signing

    verified = run_cli("eidas", "verify", "--site", str(site), "--format", "json")
    assert verified.code == 0, verified.out + verified.err
    results = json.loads(verified.out)["results"]
    assert len(results) == 13 and {r["outcome"] for r in results} == {"pass"}

    idp["metadata"] = {"url": descriptor}
    make_site(tmp_path, keycloak, realm)
    planned = run_cli("eidas", "plan", "--site", str(site))
    assert planned.code == 0, planned.err
    assert "no changes" in planned.out
