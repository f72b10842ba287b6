"""The profile a realm file names sets what verify expects (eidas/README.md, Profiles): a direct
eIDAS node keys users by the PersonIdentifier attribute, VPM (latvija.lv) by its own NameID."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cityguard.config import content_root
from cityguard.core.records import CheckResult, Outcome
from cityguard.eidas.desired import FIRST_BROKER_FLOW, Fields, desired_state
from cityguard.eidas.profiles import (
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    PERSON_IDENTIFIER,
    PROFILES,
)
from cityguard.eidas.realm import load_realm_file
from cityguard.eidas.rules import RULES, evaluate

CONTENT = content_root()
LEVEL1 = [r.control for r in RULES if r.control not in ("CG-EIDAS-014", "CG-EIDAS-015")]


def live_for(tmp_path: Path, profile: str) -> dict[str, Fields]:
    """The live objects of a realm applied from the example realm file with ``profile``."""
    shutil.copytree(CONTENT / "eidas" / "certs", tmp_path / "certs", dirs_exist_ok=True)
    data = yaml.safe_load((CONTENT / "eidas" / "realm.yml").read_text())
    data["profile"] = profile
    path = tmp_path / f"realm-{profile}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    desired = desired_state(load_realm_file(path))
    live = {key: dict(fields) for key, fields in desired.objects.items()}
    live[f"flow:{FIRST_BROKER_FLOW}"]["all_providers"] = ["idp-create-user-if-unique"]
    return live


def judged(live: dict[str, Fields], profile: str) -> dict[str, CheckResult]:
    return {r.controls[0]: r for r in evaluate("eservices", "eidas", profile, live, {}, LEVEL1)}


def test_the_vpm_profile_asks_for_and_keys_users_by_a_persistent_nameid(tmp_path: Path) -> None:
    idp = live_for(tmp_path, "vpm")["idp:eidas"]
    assert idp["config.principalType"] == "SUBJECT"
    assert idp["config.principalAttribute"] == ""
    assert idp["config.nameIDPolicyFormat"] == NAMEID_PERSISTENT == PROFILES["vpm"].name_id_format
    node = live_for(tmp_path, "eidas-node")["idp:eidas"]
    assert node["config.principalType"] == "ATTRIBUTE"
    assert node["config.principalAttribute"] == PERSON_IDENTIFIER


@pytest.mark.parametrize("profile", ["eidas-node", "vpm"])
def test_a_realm_applied_for_its_profile_passes_every_rule(tmp_path: Path, profile: str) -> None:
    results = judged(live_for(tmp_path, profile), profile)
    assert len(results) == len(LEVEL1)
    assert {c: r.outcome for c, r in results.items() if r.outcome is not Outcome.PASS} == {}


def test_verify_judges_the_principal_by_the_profile_the_realm_file_names(tmp_path: Path) -> None:
    vpm_live, node_live = live_for(tmp_path, "vpm"), live_for(tmp_path, "eidas-node")

    # a realm made for VPM, judged as a direct node: keyed by a NameID, not the PersonIdentifier
    as_node = judged(vpm_live, "eidas-node")["CG-EIDAS-007"]
    assert as_node.outcome is Outcome.FAIL
    assert as_node.expected == f"principalType ATTRIBUTE, principalAttribute {PERSON_IDENTIFIER}"

    # a realm made for a direct node, judged as VPM: VPM's own NameID is the key there
    as_vpm = judged(node_live, "vpm")["CG-EIDAS-007"]
    assert as_vpm.outcome is Outcome.FAIL
    assert as_vpm.expected == f"principalType SUBJECT with NameID format {NAMEID_PERSISTENT}"

    # only the principal differs between the profiles: every other rule agrees
    for control in LEVEL1:
        if control != "CG-EIDAS-007":
            assert judged(vpm_live, "eidas-node")[control].outcome is Outcome.PASS, control

    # VPM with a transient NameID: a new user at every login
    vpm_live["idp:eidas"]["config.nameIDPolicyFormat"] = NAMEID_TRANSIENT
    transient = judged(vpm_live, "vpm")["CG-EIDAS-007"]
    assert transient.outcome is Outcome.FAIL and NAMEID_TRANSIENT in (transient.observed or "")


def test_the_example_sites_realm_file_is_the_example_realm_file() -> None:
    """examples/site/eidas/ is a copy of eidas/ (realm file and node certificate), kept equal."""
    site_copy = CONTENT / "examples" / "site" / "eidas"
    for name in ("realm.yml", "certs/example-node-signing.pem"):
        assert (site_copy / name).read_bytes() == (CONTENT / "eidas" / name).read_bytes(), name
