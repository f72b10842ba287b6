"""Areas add their section of the site file through the registry; config never imports them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field

from cityguard.config import (
    ConfigError,
    SectionSpec,
    SiteSection,
    content_root,
    load_site,
    register_section,
    registered_sections,
    site_schema,
)
from cityguard.config.sections import unregister_section

EXAMPLE = content_root() / "examples" / "site"


class Rollout(SiteSection):
    """A test area's settings."""

    plan: str | None = Field(default=None, description="Plan file.")


class NotASection:
    pass


@pytest.fixture
def rollout() -> Iterator[None]:
    register_section("rollout", f"{__name__}:Rollout", "IPv6-like rollout settings.")
    yield
    unregister_section("rollout")


def site_with(tmp_path: Path, extra: str) -> Path:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    (site / "site.yml").write_text((site / "site.yml").read_text() + extra)
    return site / "site.yml"


def test_a_registered_section_loads_by_default(tmp_path: Path, rollout: None) -> None:
    path = site_with(tmp_path, "rollout:\n  plan: net.yml\n")
    site = load_site(path)
    section = site.section("rollout", Rollout)
    assert section == Rollout(plan="net.yml")
    assert "rollout" in site_schema()["properties"]


def test_without_the_section_its_key_is_unknown(tmp_path: Path) -> None:
    path = site_with(tmp_path, "rollout:\n  plan: net.yml\n")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    assert "rollout: unknown key (allowed: version, site," in str(caught.value)


def test_an_absent_section_reads_as_none(rollout: None) -> None:
    site = load_site(EXAMPLE / "site.yml")
    assert site.section("rollout", Rollout) is None


def test_asking_for_the_wrong_model_is_a_bug(tmp_path: Path, rollout: None) -> None:
    site = load_site(site_with(tmp_path, "rollout: {}\n"))

    class Other(SiteSection):
        """Another model."""

    with pytest.raises(TypeError):
        site.section("rollout", Other)


def test_registering_again_is_harmless_but_a_conflict_is_refused(rollout: None) -> None:
    register_section("rollout", f"{__name__}:Rollout", "IPv6-like rollout settings.")
    assert [spec.key for spec in registered_sections()].count("rollout") == 1
    with pytest.raises(ValueError, match="already registered"):
        register_section("rollout", Rollout, "Something else.")


@pytest.mark.parametrize(
    ("key", "message"),
    [("baseline", "base site file"), ("Drill", "lowercase"), ("ip v6", "lowercase")],
)
def test_section_keys_are_checked(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SectionSpec(key, Rollout, "x")


def test_a_section_needs_a_description() -> None:
    with pytest.raises(ValueError, match="description"):
        SectionSpec("rollout", Rollout, " ")


def test_a_section_model_must_be_a_site_section() -> None:
    spec = SectionSpec("rollout", f"{__name__}:NotASection", "x")
    with pytest.raises(TypeError, match="not a SiteSection"):
        load_site(EXAMPLE / "site.yml", sections=[spec])
    with pytest.raises(TypeError, match="not a model class"):
        SectionSpec("rollout", f"{__name__}:EXAMPLE", "x").load()


def test_the_same_key_twice_is_refused() -> None:
    spec = SectionSpec("rollout", Rollout, "x")
    with pytest.raises(ValueError, match="given twice"):
        load_site(EXAMPLE / "site.yml", sections=[spec, spec])


def test_registering_by_name_imports_no_pydantic() -> None:
    probe = (
        "import sys; from cityguard.config.sections import register_section; "
        "register_section('rollout', 'nowhere.settings:Rollout', 'x'); "
        "print('pydantic' in sys.modules, 'yaml' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
