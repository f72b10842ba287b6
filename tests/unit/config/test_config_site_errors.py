"""Bad site files: every problem, at once, as ``file:line: key.path: message``.

Each test runs in the site's directory and loads ``site.yml`` by relative path, so the
expected lines read exactly as an operator would see them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cityguard.config import ConfigError, load_site

SECRET = (
    "secrets must not be written in the site file: use admin_password_env or admin_password_file"
)

VALID = """\
site:
  name: ventspils
  title: Ventspils
inventory: inventory.yml
baseline: municipal-server
parameters:
  CG-SSH-003: {max_auth_tries: 3}
drill:
  plans: []
eidas:
  keycloak:
    url: http://127.0.0.1:8080
    realm: ventspils
    admin_user: admin
    admin_password_env: CITYGUARD_KEYCLOAK_PASSWORD
"""


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    (root / "policies" / "baselines").mkdir(parents=True)
    (root / "policies" / "controls").mkdir()
    (root / "playbooks").mkdir()
    for name in ("municipal-server", "small-office"):
        (root / "policies" / "baselines" / f"{name}.yml").write_text(f"name: {name}\n")
    (root / "policies" / "controls" / "ssh.yml").write_text(
        "controls:\n  - id: CG-SSH-001\n  - id: CG-SSH-003\n"
    )
    return root


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "inventory.yml").write_text("all:\n  hosts:\n    web1:\n")
    monkeypatch.chdir(directory)
    return directory


def problems(site_dir: Path, content: Path, text: str) -> list[str]:
    (site_dir / "site.yml").write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_site(Path("site.yml"), content)
    return str(caught.value).splitlines()


def test_valid_base_loads(site_dir: Path, content: Path) -> None:
    (site_dir / "site.yml").write_text(VALID)
    assert load_site(Path("site.yml"), content).name == "ventspils"


def test_missing_site_file(site_dir: Path, content: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(Path("nope.yml"), content)
    assert str(caught.value) == "nope.yml: (document): file not found"


def test_malformed_yaml(site_dir: Path, content: Path) -> None:
    text = VALID.replace("  title: Ventspils", "  title: Ventspils: city")
    assert problems(site_dir, content, text) == [
        "site.yml:3: (document): mapping values are not allowed here"
    ]


def test_duplicate_key(site_dir: Path, content: Path) -> None:
    text = VALID + "baseline: small-office\n"
    assert problems(site_dir, content, text) == ["site.yml:16: baseline: duplicate key 'baseline'"]


def test_unknown_key_lists_allowed_keys(site_dir: Path, content: Path) -> None:
    text = VALID.replace("  title: Ventspils", "  title: Ventspils\n  contakt: x")
    assert problems(site_dir, content, text) == [
        "site.yml:4: site.contakt: unknown key (allowed: name, title, contact)"
    ]


def test_unknown_top_level_key(site_dir: Path, content: Path) -> None:
    assert problems(site_dir, content, VALID + "evidense: {}\n") == [
        "site.yml:16: evidense: unknown key (allowed: site, inventory, baseline, parameters, "
        "ipv6, drill, eidas, evidence, waivers)"
    ]


def test_missing_required_key_points_at_parent(site_dir: Path, content: Path) -> None:
    text = VALID.replace("    realm: ventspils\n", "")
    assert problems(site_dir, content, text) == [
        "site.yml:11: eidas.keycloak.realm: required key is missing"
    ]


def test_wrong_type(site_dir: Path, content: Path) -> None:
    text = VALID.replace("  plans: []", "  plans: [ok.yml, 42]").replace(
        "eidas:\n", "ipv6: yes\neidas:\n"
    )
    assert problems(site_dir, content, text) == [
        "site.yml:9: drill.plans[1]: Input should be a valid string",
        "site.yml:10: ipv6: Input should be a mapping",
    ]


def test_bad_site_name(site_dir: Path, content: Path) -> None:
    text = VALID.replace("name: ventspils", "name: Ventspils City")
    assert problems(site_dir, content, text) == [
        "site.yml:2: site.name: must be 2-63 characters of lowercase letters, digits and '-', "
        "starting with a letter or digit"
    ]


def test_inline_secret(site_dir: Path, content: Path) -> None:
    text = VALID.replace(
        "admin_password_env: CITYGUARD_KEYCLOAK_PASSWORD", "admin_password: hunter2"
    )
    lines = problems(site_dir, content, text)
    # Reported once, as a secret (not also as an unknown key), and never echoing the value.
    assert lines == [f"site.yml:15: eidas.keycloak.admin_password: {SECRET}"]
    assert not any("hunter2" in line for line in lines)


def test_secret_inside_parameters(site_dir: Path, content: Path) -> None:
    text = VALID.replace("{max_auth_tries: 3}", "{max_auth_tries: 3, password: x}")
    assert problems(site_dir, content, text) == [
        f"site.yml:7: parameters.CG-SSH-003.password: {SECRET}"
    ]


def test_both_secret_sources(site_dir: Path, content: Path) -> None:
    text = VALID + "    admin_password_file: kc.txt\n"
    assert problems(site_dir, content, text) == [
        "site.yml:11: eidas.keycloak: give exactly one of admin_password_env or admin_password_file"
    ]


def test_missing_inventory(site_dir: Path, content: Path) -> None:
    text = VALID.replace("inventory: inventory.yml", "inventory: hosts/inventory.yml")
    assert problems(site_dir, content, text) == [
        "site.yml:4: inventory: file not found: hosts/inventory.yml"
    ]


def test_broken_inventory_reports_its_own_file_and_line(site_dir: Path, content: Path) -> None:
    (site_dir / "inventory.yml").write_text("all:\n  children:\n    web:\n      hosts: [web1]\n")
    assert problems(site_dir, content, VALID) == [
        "inventory.yml:4: all.children.web.hosts: hosts must be a mapping of host name to host vars"
    ]


def test_unknown_baseline_lists_known(site_dir: Path, content: Path) -> None:
    text = VALID.replace("baseline: municipal-server", "baseline: municipal")
    assert problems(site_dir, content, text) == [
        "site.yml:5: baseline: unknown baseline 'municipal' (known: municipal-server, small-office)"
    ]


def test_baseline_must_be_a_name_not_a_path(site_dir: Path, content: Path) -> None:
    text = VALID.replace("baseline: municipal-server", "baseline: ../../etc/passwd")
    assert problems(site_dir, content, text) == [
        "site.yml:5: baseline: must be a baseline name (letters, digits, '-', '_'), not a path"
    ]


def test_unknown_control_id(site_dir: Path, content: Path) -> None:
    text = VALID.replace(
        "CG-SSH-003: {max_auth_tries: 3}", "CG-SSH-03: {max_auth_tries: 3}\n  X-1: {}"
    )
    assert problems(site_dir, content, text) == [
        "site.yml:7: parameters.CG-SSH-03: unknown control id 'CG-SSH-03' "
        "(did you mean 'CG-SSH-003'?)",
        "site.yml:8: parameters.X-1: unknown control id 'X-1' (not in policies/controls)",
    ]


def test_missing_drill_plans_and_ipv6_plan(site_dir: Path, content: Path) -> None:
    (site_dir / "present.yml").write_text("steps: []\n")
    text = VALID.replace("  plans: []", "  plans:\n    - present.yml\n    - absent.yml").replace(
        "eidas:\n", "ipv6:\n  plan: ipv6.yml\neidas:\n"
    )
    assert problems(site_dir, content, text) == [
        "site.yml:11: drill.plans[1]: file not found: absent.yml",
        "site.yml:13: ipv6.plan: file not found: ipv6.yml",
    ]


def test_schema_problems_all_reported_at_once(site_dir: Path, content: Path) -> None:
    text = """\
    site:
      name: X
      password: p
    inventory: 3
    baseline: nowhere
    drill:
      plans: [1]
    eidas:
      keycloak:
        url: ftp://sso
        realm: r
        admin_user: a
        admin_password_env: 1BAD
    """
    assert problems(site_dir, content, text) == [
        "site.yml:1: site.title: required key is missing",
        "site.yml:2: site.name: must be 2-63 characters of lowercase letters, digits and '-', "
        "starting with a letter or digit",
        f"site.yml:3: site.password: {SECRET}",
        "site.yml:4: inventory: Input should be a valid string",
        "site.yml:7: drill.plans[0]: Input should be a valid string",
        "site.yml:10: eidas.keycloak.url: must be an http:// or https:// URL",
        "site.yml:13: eidas.keycloak.admin_password_env: must be an environment variable name "
        "(letters, digits, '_')",
    ]


def test_logical_problems_all_reported_at_once(site_dir: Path, content: Path) -> None:
    text = (
        VALID.replace("inventory: inventory.yml", "inventory: gone.yml")
        .replace("baseline: municipal-server", "baseline: big-city")
        .replace("CG-SSH-003", "CG-NOPE-1")
        .replace("  plans: []", "  plans: [drill.yml]")
    )
    assert problems(site_dir, content, text) == [
        "site.yml:4: inventory: file not found: gone.yml",
        "site.yml:5: baseline: unknown baseline 'big-city' (known: municipal-server, small-office)",
        "site.yml:7: parameters.CG-NOPE-1: unknown control id 'CG-NOPE-1' "
        "(not in policies/controls)",
        "site.yml:9: drill.plans[0]: file not found: drill.yml",
    ]


def test_document_that_is_not_a_mapping(site_dir: Path, content: Path) -> None:
    assert problems(site_dir, content, "- a\n- b\n") == [
        "site.yml:1: (document): Input should be a mapping"
    ]
