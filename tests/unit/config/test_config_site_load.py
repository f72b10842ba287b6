"""Good site files load and come back fully resolved."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cityguard.config import Site, cache_dir, content_root, load_site, state_dir_for

REPO = Path(__file__).resolve().parents[3]


def make_content(root: Path, controls: bool = True) -> Path:
    """A minimal content dir: two baselines and (optionally) a control catalog."""
    baselines = root / "content" / "policies" / "baselines"
    baselines.mkdir(parents=True)
    (baselines / "municipal-server.yml").write_text("name: municipal-server\ncontrols: []\n")
    (root / "content" / "policies" / "controls").mkdir()
    (root / "content" / "playbooks").mkdir()
    if controls:
        (root / "content" / "policies" / "controls" / "ssh.yml").write_text(
            "controls:\n  - id: CG-SSH-001\n  - id: CG-SSH-003\n"
        )
    return root / "content"


def write_site(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inventory.yml").write_text(
        "all:\n  children:\n    web:\n      hosts:\n        web1:\n"
    )
    site = directory / "site.yml"
    site.write_text(textwrap.dedent(text))
    return site


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CITYGUARD_STATE", "CITYGUARD_CACHE", "CITYGUARD_CONTENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_example_site_loads_with_values_resolved() -> None:
    site = load_site(REPO / "examples" / "site" / "site.yml", REPO)
    assert site.name == "ventspils-example"
    assert site.title == "Ventspils city (example site)"
    assert site.path == REPO / "examples" / "site" / "site.yml"
    assert site.root == REPO / "examples" / "site"
    assert site.inventory_path == REPO / "examples" / "site" / "inventory.yml"
    assert site.baseline == "municipal-server"
    assert site.baseline_path == REPO / "policies" / "baselines" / "municipal-server.yml"
    assert site.parameters == {}
    assert site.ipv6_plan is None
    assert site.drill_plans == ()
    assert site.keycloak is not None
    assert site.keycloak.url == "http://127.0.0.1:8080"
    assert site.keycloak.realm == "ventspils"
    assert site.keycloak.admin_password_env == "CITYGUARD_KEYCLOAK_PASSWORD"
    assert site.evidence_dsn_env == "CITYGUARD_EVIDENCE_DSN"
    assert site.inventory.host_names() == ["web1", "db1", "router1", "scratch1"]
    assert site.inventory.groups["scratch"] == ["scratch1"]
    assert site.state_dir == Path.home() / ".local/state/cityguard/ventspils-example"


def test_example_site_loads_with_default_content_root() -> None:
    assert content_root() == REPO
    assert load_site(REPO / "examples" / "site" / "site.yml").content_dir == REPO


def test_content_root_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    content = make_content(tmp_path)
    monkeypatch.setenv("CITYGUARD_CONTENT", str(content))
    site = write_site(
        tmp_path / "s",
        "site: {name: riga, title: R}\ninventory: inventory.yml\nbaseline: municipal-server\n",
    )
    assert load_site(site).content_dir == content.resolve()


def test_full_site_resolves_paths_relative_to_site_file(tmp_path: Path) -> None:
    content = make_content(tmp_path)
    site_dir = tmp_path / "city"
    site_path = write_site(
        site_dir,
        """\
        site:
          name: liepaja
          title: Liepaja
        inventory: inventory.yml
        baseline: municipal-server
        parameters:
          CG-SSH-003: {max_auth_tries: 3}
        ipv6:
          plan: net/ipv6-plan.yml
        drill:
          plans: [drills/db.yml, drills/web.yml]
        eidas:
          keycloak:
            url: https://sso.example.invalid
            realm: liepaja
            admin_user: admin
            admin_password_file: secrets/kc
        """,
    )
    for relative in ("net/ipv6-plan.yml", "drills/db.yml", "drills/web.yml", "secrets/kc"):
        (site_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (site_dir / relative).write_text("s3cret\n")
    site = load_site(site_path, content)
    assert site.parameters == {"CG-SSH-003": {"max_auth_tries": 3}}
    assert site.ipv6_plan == site_dir / "net/ipv6-plan.yml"
    assert site.drill_plans == (site_dir / "drills/db.yml", site_dir / "drills/web.yml")
    assert site.keycloak is not None
    assert site.keycloak.admin_password_file == str(site_dir / "secrets/kc")
    assert site.keycloak.read_admin_password() == "s3cret"
    assert site.contact is None
    assert site.evidence_dsn_env is None
    assert site.evidence_dsn() is None
    assert "s3cret" not in repr(site)


def test_relative_site_path_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = make_content(tmp_path)
    write_site(
        tmp_path / "s",
        "site: {name: cesis, title: C}\ninventory: inventory.yml\nbaseline: municipal-server\n",
    )
    monkeypatch.chdir(tmp_path)
    site = load_site(Path("s/site.yml"), content)
    assert site.path == tmp_path / "s" / "site.yml"
    assert site.inventory_path == tmp_path / "s" / "inventory.yml"


def test_secrets_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    site = load_site(REPO / "examples" / "site" / "site.yml", REPO)
    assert site.evidence_dsn() is None
    monkeypatch.setenv("CITYGUARD_EVIDENCE_DSN", "postgresql://cg@db/evidence")
    monkeypatch.setenv("CITYGUARD_KEYCLOAK_PASSWORD", "kc-pass")
    assert site.evidence_dsn() == "postgresql://cg@db/evidence"
    assert site.keycloak is not None
    assert site.keycloak.read_admin_password() == "kc-pass"
    assert "postgresql://" not in repr(site) and "kc-pass" not in repr(site)


def test_unset_keycloak_password_variable_is_reported() -> None:
    from cityguard.config import ConfigError

    site = load_site(REPO / "examples" / "site" / "site.yml", REPO)
    assert site.keycloak is not None
    with pytest.raises(ConfigError) as caught:
        site.keycloak.read_admin_password()
    assert str(caught.value) == (
        "eidas.keycloak.admin_password_env: CITYGUARD_KEYCLOAK_PASSWORD is unset"
    )


def test_empty_control_catalog_skips_the_parameter_rule(tmp_path: Path) -> None:
    content = make_content(tmp_path, controls=False)
    site_path = write_site(
        tmp_path / "s",
        "site: {name: tukums, title: T}\ninventory: inventory.yml\nbaseline: municipal-server\n"
        "parameters: {CG-ANYTHING: {x: 1}}\n",
    )
    assert load_site(site_path, content).parameters == {"CG-ANYTHING": {"x": 1}}


def test_state_and_cache_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert state_dir_for("riga") == home / ".local/state/cityguard/riga"
    assert cache_dir() == home / ".cache/cityguard"
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("CITYGUARD_CACHE", str(tmp_path / "cache"))
    assert state_dir_for("riga") == tmp_path / "state"
    assert cache_dir() == tmp_path / "cache"
    site = load_site(REPO / "examples" / "site" / "site.yml", REPO)
    assert isinstance(site, Site)
    assert site.state_dir == tmp_path / "state"
