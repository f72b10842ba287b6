"""Good site files load and come back fully resolved."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cityguard.cli.main import build_parser
from cityguard.config import Site, cache_dir, content_root, load_site, state_dir_for
from cityguard.core.secrets import SecretRef, forget_secrets

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


@pytest.fixture(autouse=True, scope="module")
def _area_sections() -> None:
    """The example site has area sections (drill, eidas...): register them as the CLI does."""
    build_parser()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CITYGUARD_STATE", "CITYGUARD_CACHE", "CITYGUARD_CONTENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    forget_secrets()


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_example_site_loads_with_values_resolved() -> None:
    site_path = REPO / "examples" / "site" / "site.yml"
    site = load_site(site_path, REPO)
    assert site.name == "ventspils-example"
    assert site.title == "Ventspils city (example site)"
    assert site.path == REPO / "examples" / "site" / "site.yml"
    assert site.root == REPO / "examples" / "site"
    assert site.inventory_path == REPO / "examples" / "site" / "inventory.yml"
    assert site.baseline == "municipal-server"
    assert site.baseline_path == REPO / "policies" / "baselines" / "municipal-server.yml"
    assert site.version == 1
    assert site.parameters == {}
    assert {"drill", "eidas"} <= set(site.sections)
    eidas = site.sections["eidas"]
    assert eidas.realm_path(site.root) == REPO / "examples" / "site" / "eidas" / "realm.yml"
    password = site.secret_ref(("eidas",), eidas, "admin_password")
    assert password == SecretRef.env("CITYGUARD_KEYCLOAK_ADMIN_PASSWORD")
    assert site.evidence_dsn_ref == SecretRef.env("CITYGUARD_EVIDENCE_DSN")
    assert site.evidence_dsn_ref.origin == f"{site_path}:{line_of(site_path, 'dsn_env')}: " + (
        "evidence.dsn_env"
    )
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
        "version: 1\nsite: {name: riga, title: R}\ninventory: inventory.yml\n"
        "baseline: municipal-server\n",
    )
    assert load_site(site).content_dir == content.resolve()


def test_full_site_resolves_paths_relative_to_site_file(tmp_path: Path) -> None:
    content = make_content(tmp_path)
    site_dir = tmp_path / "city"
    site_path = write_site(
        site_dir,
        """\
        version: 1
        site:
          name: liepaja
          title: Liepaja
        inventory: inventory.yml
        baseline: municipal-server
        parameters:
          CG-SSH-003: {max_auth_tries: 3}
        evidence:
          dsn_file: secrets/dsn
        """,
    )
    (site_dir / "secrets").mkdir()
    (site_dir / "secrets" / "dsn").write_text("postgresql://cg:s3cret-pw@db/evidence\n")
    site = load_site(site_path, content)
    assert site.parameters == {"CG-SSH-003": {"max_auth_tries": 3}}
    assert site.contact is None
    assert site.evidence_dsn_ref == SecretRef.file(site_dir / "secrets" / "dsn")
    assert "s3cret" not in repr(site)
    assert site.evidence_dsn() == "postgresql://cg:s3cret-pw@db/evidence"
    assert "s3cret" not in repr(site)


def test_no_evidence_section_means_sqlite(tmp_path: Path) -> None:
    content = make_content(tmp_path)
    site_path = write_site(
        tmp_path / "s",
        "version: 1\nsite: {name: cesis, title: C}\ninventory: inventory.yml\n"
        "baseline: municipal-server\n",
    )
    site = load_site(site_path, content)
    assert site.evidence_dsn_ref is None
    assert site.evidence_dsn() is None


def test_relative_site_path_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = make_content(tmp_path)
    write_site(
        tmp_path / "s",
        "version: 1\nsite: {name: cesis, title: C}\ninventory: inventory.yml\n"
        "baseline: municipal-server\n",
    )
    monkeypatch.chdir(tmp_path)
    site = load_site(Path("s/site.yml"), content)
    assert site.path == tmp_path / "s" / "site.yml"
    assert site.inventory_path == tmp_path / "s" / "inventory.yml"


def test_secrets_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYGUARD_EVIDENCE_DSN", raising=False)
    site = load_site(REPO / "examples" / "site" / "site.yml", REPO)
    assert site.evidence_dsn() is None
    monkeypatch.setenv("CITYGUARD_EVIDENCE_DSN", "postgresql://cg@db/evidence")
    assert site.evidence_dsn() == "postgresql://cg@db/evidence"
    assert "postgresql://" not in repr(site)


def test_empty_control_catalog_skips_the_parameter_rule(tmp_path: Path) -> None:
    content = make_content(tmp_path, controls=False)
    site_path = write_site(
        tmp_path / "s",
        "version: 1\nsite: {name: tukums, title: T}\ninventory: inventory.yml\n"
        "baseline: municipal-server\nparameters: {CG-ANYTHING: {x: 1}}\n",
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
