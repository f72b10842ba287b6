"""Bad site files: every problem, at once, as ``file:line: key.path: message``.

Each test runs in the site's directory and loads ``site.yml`` by relative path, so the
expected lines read exactly as an operator would see them. Nested area settings are exercised
through a test area, ``exercise``, given to ``load_site`` as a section the way an area adds one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import Field, field_validator, model_validator

from cityguard.config import ConfigError, SectionScope, SectionSpec, SiteSection, load_site
from cityguard.config.errors import ConfigProblem
from cityguard.config.site import check_secret_source, env_name

SECRET = (
    "secrets must not be written in the site file: refer to them with a *_env, *_file or "
    "*_credential key"
)
VERSION_1 = "this cityguard reads site file version 1"


class Broker(SiteSection):
    """A login broker, to test nested settings and secret references."""

    url: str = Field(description="Base URL.")
    realm: str = Field(min_length=1, description="Realm.")
    admin_user: str = Field(min_length=1, description="Admin user.")
    admin_password_env: str | None = Field(default=None, description="Variable with it.")
    admin_password_file: str | None = Field(default=None, description="File with it.")
    admin_password_credential: str | None = Field(default=None, description="Credential.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("admin_password_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return env_name(value)

    @model_validator(mode="after")
    def _one_secret(self) -> Broker:
        check_secret_source(self, "admin_password", required=True)
        return self


class Exercise(SiteSection):
    """An area's section, as an area would write it in its settings module."""

    plans: list[str] = Field(default_factory=list, description="Plan files.")
    broker: Broker | None = Field(default=None, description="The broker.")

    def check(self, scope: SectionScope) -> list[ConfigProblem]:
        problems = []
        for index, plan in enumerate(self.plans):
            problems += scope.referenced_file(("plans", index), plan)
        return problems


SECTIONS = [SectionSpec("exercise", Exercise, "A test area's settings.")]

VALID = """\
version: 1
site:
  name: ventspils
  title: Ventspils
inventory: inventory.yml
baseline: municipal-server
parameters:
  CG-SSH-003: {max_auth_tries: 3}
evidence:
  dsn_env: CITYGUARD_EVIDENCE_DSN
exercise:
  plans: []
  broker:
    url: http://127.0.0.1:8080
    realm: ventspils
    admin_user: admin
    admin_password_env: CITYGUARD_TEST_PASSWORD
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


def problems(site_dir: Path, content: Path, text: str, sections: bool = True) -> list[str]:
    (site_dir / "site.yml").write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_site(Path("site.yml"), content, sections=SECTIONS if sections else [])
    return str(caught.value).splitlines()


def test_valid_base_loads(site_dir: Path, content: Path) -> None:
    (site_dir / "site.yml").write_text(VALID)
    site = load_site(Path("site.yml"), content, sections=SECTIONS)
    assert site.name == "ventspils"
    assert site.version == 1
    exercise = site.section("exercise", Exercise)
    assert exercise is not None and exercise.broker is not None
    assert exercise.broker.realm == "ventspils"


def test_missing_site_file(site_dir: Path, content: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(Path("nope.yml"), content)
    assert str(caught.value) == "nope.yml: (document): file not found"


def test_malformed_yaml(site_dir: Path, content: Path) -> None:
    text = VALID.replace("  title: Ventspils", "  title: Ventspils: city")
    assert problems(site_dir, content, text) == [
        "site.yml:4: (document): mapping values are not allowed here"
    ]


def test_duplicate_key(site_dir: Path, content: Path) -> None:
    text = VALID + "baseline: small-office\n"
    assert problems(site_dir, content, text) == ["site.yml:18: baseline: duplicate key 'baseline'"]


def test_missing_version(site_dir: Path, content: Path) -> None:
    text = VALID.replace("version: 1\n", "")
    assert problems(site_dir, content, text) == [
        f"site.yml:1: version: required key is missing: {VERSION_1} (add 'version: 1' at the top)"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2", f"unsupported site file version 2: {VERSION_1}"),
        ("0", f"unsupported site file version 0: {VERSION_1}"),
        ("'1'", f"must be a whole number: {VERSION_1}"),
        ("1.0", f"must be a whole number: {VERSION_1}"),
        ("true", f"must be a whole number: {VERSION_1}"),
        ("", f"must be a whole number: {VERSION_1}"),
    ],
)
def test_other_version_is_one_line_and_nothing_else(
    site_dir: Path, content: Path, value: str, message: str
) -> None:
    # keys a later version might have are not reported: the version says it all
    text = VALID.replace("version: 1", f"version: {value}") + "drill: {plans: []}\n"
    assert problems(site_dir, content, text) == [f"site.yml:1: version: {message}"]


def test_unknown_key_lists_allowed_keys(site_dir: Path, content: Path) -> None:
    text = VALID.replace("  title: Ventspils", "  title: Ventspils\n  contakt: x")
    assert problems(site_dir, content, text) == [
        "site.yml:5: site.contakt: unknown key (allowed: name, title, contact)"
    ]


def test_unknown_top_level_key_lists_base_and_sections(site_dir: Path, content: Path) -> None:
    assert problems(site_dir, content, VALID + "evidense: {}\n") == [
        "site.yml:18: evidense: unknown key (allowed: version, site, inventory, baseline, "
        "parameters, evidence, waivers, exercise)"
    ]


@pytest.mark.parametrize("key", ["drill", "ipv6", "eidas"])
def test_keys_of_areas_to_come_are_unknown(site_dir: Path, content: Path, key: str) -> None:
    text = VALID.replace("exercise:", f"{key}:", 1)
    assert problems(site_dir, content, text, sections=False) == [
        f"site.yml:11: {key}: unknown key (allowed: version, site, inventory, baseline, "
        "parameters, evidence, waivers)"
    ]


def test_missing_required_key_points_at_parent(site_dir: Path, content: Path) -> None:
    text = VALID.replace("    realm: ventspils\n", "")
    assert problems(site_dir, content, text) == [
        "site.yml:13: exercise.broker.realm: required key is missing"
    ]


def test_wrong_type(site_dir: Path, content: Path) -> None:
    text = VALID.replace("  plans: []", "  plans: [ok.yml, 42]").replace(
        "evidence:\n  dsn_env: CITYGUARD_EVIDENCE_DSN\n", "evidence: yes\n"
    )
    assert problems(site_dir, content, text) == [
        "site.yml:9: evidence: Input should be a mapping",
        "site.yml:11: exercise.plans[1]: Input should be a valid string",
    ]


def test_bad_site_name(site_dir: Path, content: Path) -> None:
    text = VALID.replace("name: ventspils", "name: Ventspils City")
    assert problems(site_dir, content, text) == [
        "site.yml:3: site.name: must be 2-63 characters of lowercase letters, digits and '-', "
        "starting with a letter or digit"
    ]


def test_inline_secret(site_dir: Path, content: Path) -> None:
    text = VALID.replace("admin_password_env: CITYGUARD_TEST_PASSWORD", "admin_password: hunter2")
    lines = problems(site_dir, content, text)
    # Reported once, as a secret (not also as an unknown key), and never echoing the value.
    assert lines == [f"site.yml:17: exercise.broker.admin_password: {SECRET}"]
    assert not any("hunter2" in line for line in lines)


def test_inline_dsn(site_dir: Path, content: Path) -> None:
    text = VALID.replace(
        "dsn_env: CITYGUARD_EVIDENCE_DSN", "dsn: postgresql://cg:hunter2@db/evidence"
    )
    lines = problems(site_dir, content, text)
    assert lines == [f"site.yml:10: evidence.dsn: {SECRET}"]
    assert not any("hunter2" in line for line in lines)


def test_secret_inside_parameters(site_dir: Path, content: Path) -> None:
    text = VALID.replace("{max_auth_tries: 3}", "{max_auth_tries: 3, password: x}")
    assert problems(site_dir, content, text) == [
        f"site.yml:8: parameters.CG-SSH-003.password: {SECRET}"
    ]


def test_two_sources_for_one_secret(site_dir: Path, content: Path) -> None:
    text = VALID.replace(
        "  dsn_env: CITYGUARD_EVIDENCE_DSN\n",
        "  dsn_env: CITYGUARD_EVIDENCE_DSN\n  dsn_file: dsn.txt\n",
    ).replace("admin_password_env: CITYGUARD_TEST_PASSWORD", "admin_user2: x")
    assert problems(site_dir, content, text) == [
        "site.yml:9: evidence: give only one of dsn_env, dsn_file, dsn_credential",
        "site.yml:18: exercise.broker.admin_user2: unknown key (allowed: url, realm, admin_user, "
        "admin_password_env, admin_password_file, admin_password_credential)",
    ]


def test_a_required_secret_needs_a_source(site_dir: Path, content: Path) -> None:
    text = VALID.replace("    admin_password_env: CITYGUARD_TEST_PASSWORD\n", "")
    assert problems(site_dir, content, text) == [
        "site.yml:13: exercise.broker: give exactly one of admin_password_env, "
        "admin_password_file, admin_password_credential"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dsn_env: 1BAD", "evidence.dsn_env: must be an environment variable name"),
        ("dsn_credential: ../dsn", "evidence.dsn_credential: must be a systemd credential name"),
        ("dsn_file: ''", "evidence.dsn_file: String should have at least 1 character"),
    ],
)
def test_bad_secret_reference(site_dir: Path, content: Path, line: str, message: str) -> None:
    text = VALID.replace("dsn_env: CITYGUARD_EVIDENCE_DSN", line)
    (shown,) = problems(site_dir, content, text)
    assert shown.startswith(f"site.yml:10: {message}")


def test_missing_inventory(site_dir: Path, content: Path) -> None:
    text = VALID.replace("inventory: inventory.yml", "inventory: hosts/inventory.yml")
    assert problems(site_dir, content, text) == [
        "site.yml:5: inventory: file not found: hosts/inventory.yml"
    ]


def test_broken_inventory_reports_its_own_file_and_line(site_dir: Path, content: Path) -> None:
    (site_dir / "inventory.yml").write_text("all:\n  children:\n    web:\n      hosts: [web1]\n")
    assert problems(site_dir, content, VALID) == [
        "inventory.yml:4: all.children.web.hosts: hosts must be a mapping of host name to host vars"
    ]


def test_unknown_baseline_lists_known(site_dir: Path, content: Path) -> None:
    text = VALID.replace("baseline: municipal-server", "baseline: municipal")
    assert problems(site_dir, content, text) == [
        "site.yml:6: baseline: unknown baseline 'municipal' (known: municipal-server, small-office)"
    ]


def test_baseline_must_be_a_name_not_a_path(site_dir: Path, content: Path) -> None:
    text = VALID.replace("baseline: municipal-server", "baseline: ../../etc/passwd")
    assert problems(site_dir, content, text) == [
        "site.yml:6: baseline: must be a baseline name (letters, digits, '-', '_'), not a path"
    ]


def test_unknown_control_id(site_dir: Path, content: Path) -> None:
    text = VALID.replace(
        "CG-SSH-003: {max_auth_tries: 3}", "CG-SSH-03: {max_auth_tries: 3}\n  X-1: {}"
    )
    assert problems(site_dir, content, text) == [
        "site.yml:8: parameters.CG-SSH-03: unknown control id 'CG-SSH-03' "
        "(did you mean 'CG-SSH-003'?)",
        "site.yml:9: parameters.X-1: unknown control id 'X-1' (not in policies/controls)",
    ]


def test_a_section_checks_the_files_it_names(site_dir: Path, content: Path) -> None:
    (site_dir / "present.yml").write_text("steps: []\n")
    text = VALID.replace("  plans: []", "  plans:\n    - present.yml\n    - absent.yml")
    assert problems(site_dir, content, text) == [
        "site.yml:14: exercise.plans[1]: file not found: absent.yml",
    ]


def test_schema_problems_all_reported_at_once(site_dir: Path, content: Path) -> None:
    text = """\
    version: 1
    site:
      name: X
      password: p
    inventory: 3
    baseline: nowhere
    exercise:
      plans: [1]
      broker:
        url: ftp://sso
        realm: r
        admin_user: a
        admin_password_env: 1BAD
    """
    assert problems(site_dir, content, text) == [
        "site.yml:2: site.title: required key is missing",
        "site.yml:3: site.name: must be 2-63 characters of lowercase letters, digits and '-', "
        "starting with a letter or digit",
        f"site.yml:4: site.password: {SECRET}",
        "site.yml:5: inventory: Input should be a valid string",
        # the logical pass runs too, on the keys the schema accepted
        "site.yml:6: baseline: unknown baseline 'nowhere' (known: municipal-server, small-office)",
        "site.yml:8: exercise.plans[0]: Input should be a valid string",
        "site.yml:10: exercise.broker.url: must be an http:// or https:// URL",
        "site.yml:13: exercise.broker.admin_password_env: must be an environment variable name "
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
        "site.yml:5: inventory: file not found: gone.yml",
        "site.yml:6: baseline: unknown baseline 'big-city' (known: municipal-server, small-office)",
        "site.yml:8: parameters.CG-NOPE-1: unknown control id 'CG-NOPE-1' "
        "(not in policies/controls)",
        "site.yml:12: exercise.plans[0]: file not found: drill.yml",
    ]


def test_document_that_is_not_a_mapping(site_dir: Path, content: Path) -> None:
    assert problems(site_dir, content, "- a\n- b\n") == [
        "site.yml:1: (document): Input should be a mapping"
    ]
