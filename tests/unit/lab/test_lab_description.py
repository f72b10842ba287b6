"""The lab description (lab.yml): a valid file, every problem located at once, the default.

Each test writes its lab.yml into a temporary directory and loads it by relative path, so the
expected lines read exactly as an operator would see them.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from cityguard.config import ConfigError, content_root, load_site
from cityguard.lab.description import DEFAULT_LAB, LAB_FILE, load_lab_file
from cityguard.lab.image import BASE_PACKAGES, ImageRecipe, image_key
from cityguard.lab.site import lab_description

EXAMPLE_SITE = content_root() / "examples" / "site"

VALID = """\
image:
  installed: [postgresql, nftables]
  downloaded: [auditd]
  masked: [auditd.service]
groups:
  db:
    units: [postgresql.service]
    start:
      - install -d /run/postgresql
      - pg_ctlcluster 15 main start
    stop: [pg_ctlcluster 15 main stop -m fast]
  router:
    units: [radvd.service]
    start: [/etc/init.d/radvd start]
    stop: [/etc/init.d/radvd stop]
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(text: str, groups: list[str] | None = None) -> list[str]:
    Path(LAB_FILE).write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_lab_file(Path(LAB_FILE), inventory_groups=groups)
    return str(caught.value).splitlines()


@pytest.fixture
def site_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example site, with its lab.yml, in a directory of its own (the working directory)."""
    target = tmp_path / "site"
    shutil.copytree(EXAMPLE_SITE, target)
    monkeypatch.chdir(target)
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))
    return target


def test_a_valid_file_gives_the_image_and_the_services_per_group(here: Path) -> None:
    Path(LAB_FILE).write_text(VALID)
    lab = load_lab_file(Path(LAB_FILE), inventory_groups=["all", "web", "db", "router"])
    assert lab.source == "lab.yml"
    # the base packages always come first; the file's are added, each once
    assert lab.image.installed == (*BASE_PACKAGES, "postgresql", "nftables")
    assert lab.image.downloaded == ("auditd",)
    assert lab.image.masked == ("auditd.service",)
    assert lab.units() == ("postgresql.service", "radvd.service")

    db = lab.services_for(("db",))
    assert db.enabled_units == ("postgresql.service",)
    assert db.disabled_units == ("radvd.service",)
    assert db.start_blocks == (("install -d /run/postgresql", "pg_ctlcluster 15 main start"),)
    assert db.stop_commands == ("pg_ctlcluster 15 main stop -m fast",)

    web = lab.services_for(("web",))
    assert web.enabled_units == web.start_blocks == web.stop_commands == ()
    assert web.disabled_units == ("postgresql.service", "radvd.service")

    # a host in two groups: starts in file order, stops in reverse
    both = lab.services_for(("router", "db"))
    assert both.enabled_units == ("postgresql.service", "radvd.service")
    assert both.disabled_units == ()
    assert [block[-1] for block in both.start_blocks] == [
        "pg_ctlcluster 15 main start",
        "/etc/init.d/radvd start",
    ]
    assert both.stop_commands == ("/etc/init.d/radvd stop", "pg_ctlcluster 15 main stop -m fast")


def test_the_group_all_applies_to_every_host(here: Path) -> None:
    Path(LAB_FILE).write_text("groups:\n  all:\n    units: [cron.service]\n")
    lab = load_lab_file(Path(LAB_FILE), inventory_groups=["web"])
    assert lab.services_for(()).enabled_units == ("cron.service",)


def test_listing_a_base_package_again_changes_nothing(here: Path) -> None:
    Path(LAB_FILE).write_text("image:\n  installed: [sudo]\n")
    assert load_lab_file(Path(LAB_FILE)).image == ImageRecipe()


def test_every_problem_is_reported_at_once_with_its_line(here: Path) -> None:
    found = problems(
        """\
        image:
          installed:
            - nftables
            - Not_A_Package
            - nftables
          downloaded: [auditd, sudo]
          masked: [auditd]
          extra: 1
        groups:
          db:
            units: [postgresql.service, radvd]
            start: ["  "]
            stop: pg_ctlcluster 15 main stop
          routr:
            units: [radvd.service]
        images: {}
        """,
        groups=["all", "web", "db", "router"],
    )
    assert found == [
        "lab.yml:4: image.installed[1]: must be a Debian package name "
        "(lowercase letters, digits, '+', '-', '.')",
        "lab.yml:5: image.installed[2]: 'nftables' is listed twice",
        "lab.yml:6: image.downloaded[1]: 'sudo' is also installed (image.installed or a base "
        "package): a package is either installed or only downloaded",
        "lab.yml:7: image.masked[0]: must be a systemd unit name with its suffix, "
        "e.g. postgresql.service",
        "lab.yml:8: image.extra: unknown key (allowed: installed, downloaded, masked)",
        "lab.yml:11: groups.db.units[1]: must be a systemd unit name with its suffix, "
        "e.g. postgresql.service",
        "lab.yml:12: groups.db.start[0]: must be a shell command, not empty",
        "lab.yml:13: groups.db.stop: Input should be a valid list",
        "lab.yml:14: groups.routr: the inventory has no group 'routr' "
        "(groups: all, db, router, web)",
        "lab.yml:16: images: unknown key (allowed: image, groups, data)",
    ]


def test_a_unit_masked_in_the_image_cannot_run_on_a_group(here: Path) -> None:
    found = problems(
        """\
        image:
          masked: [auditd.service]
        groups:
          db:
            units: [auditd.service]
        """
    )
    assert found == [
        "lab.yml:5: groups.db.units[0]: 'auditd.service' is masked in image.masked, "
        "so it cannot run"
    ]


def test_groups_are_not_checked_without_an_inventory(here: Path) -> None:
    Path(LAB_FILE).write_text("groups:\n  anything:\n    units: [x.service]\n")
    assert load_lab_file(Path(LAB_FILE)).units() == ("x.service",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "lab.yml: (document): file is empty"),
        ("- a\n", "lab.yml:1: (document): Input should be a mapping"),
        (
            "image: [\n",
            "lab.yml:2: (document): expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_a_file_that_is_not_a_mapping(here: Path, text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_the_site_lab_file_beside_the_site_file_is_used(site_copy: Path) -> None:
    site = load_site(Path("site.yml"))
    lab = lab_description(site)
    assert lab.source == "lab.yml"
    assert "postgresql" in lab.image.installed
    assert lab.services_for(site.inventory.groups_of("db1")).enabled_units == (
        "postgresql.service",
    )


def test_problems_name_the_lab_file_as_the_operator_reaches_it(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (site_copy / LAB_FILE).write_text("groups:\n  databases: {}\n")
    monkeypatch.chdir(site_copy.parent)
    site = load_site(Path("site/site.yml"))
    with pytest.raises(ConfigError) as caught:
        lab_description(site)
    assert str(caught.value) == (
        "site/lab.yml:2: groups.databases: the inventory has no group 'databases' "
        "(groups: all, db, dns, router, scratch, web)"
    )


def test_without_a_lab_file_the_built_in_default_is_used(site_copy: Path) -> None:
    (site_copy / LAB_FILE).unlink()
    lab = lab_description(load_site(Path("site.yml")))
    assert lab is DEFAULT_LAB
    assert lab.image == ImageRecipe(installed=BASE_PACKAGES)
    assert {"openssh-server", "python3", "sudo", "systemd", "tini"} <= set(lab.image.installed)
    services = lab.services_for(("db",))
    assert services.enabled_units == services.disabled_units == services.start_blocks == ()
    # its own image: never the cached image of a site with more packages
    assert image_key(lab.image) != image_key(load_lab_file(EXAMPLE_SITE / LAB_FILE).image)


def test_a_lab_file_given_on_the_command_line_wins_and_must_exist(site_copy: Path) -> None:
    site = load_site(Path("site.yml"))
    (site_copy / "small.yml").write_text("image:\n  installed: [nftables]\n")
    assert lab_description(site, Path("small.yml")).image.installed == (
        *BASE_PACKAGES,
        "nftables",
    )
    with pytest.raises(ConfigError) as caught:
        lab_description(site, Path("missing.yml"))
    assert str(caught.value) == "missing.yml: (document): file not found"
