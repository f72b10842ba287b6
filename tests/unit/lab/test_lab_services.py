"""The services a lab description names: enabled per host under systemd, started without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cityguard.lab import host as lab_host
from cityguard.lab import lab as lab_engine
from cityguard.lab.command import LabError
from cityguard.lab.description import HostServices, LabDescription, load_lab_file
from cityguard.lab.image import Image
from cityguard.lab.plain import init_script

WANTS = "etc/systemd/system/multi-user.target.wants"


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """A root laid out like the image's: unit files, one enabled by its package, one masked."""
    root = tmp_path / "rootfs"
    units = root / "lib/systemd/system"
    units.mkdir(parents=True)
    for unit in ("postgresql.service", "radvd.service", "ssh.service"):
        (units / unit).write_text("[Unit]\n")
    (root / WANTS).mkdir(parents=True)
    for unit in ("postgresql.service", "ssh.service"):
        (root / WANTS / unit).symlink_to(f"/lib/systemd/system/{unit}")
    (root / "etc/systemd/system/auditd.service").symlink_to("/dev/null")
    return root


def enabled(root: Path) -> dict[str, str]:
    return {link.name: os.readlink(link) for link in sorted((root / WANTS).iterdir())}


def test_a_host_keeps_its_groups_units_and_loses_the_others(image_root: Path) -> None:
    services = HostServices(
        enabled_units=("radvd.service",), disabled_units=("postgresql.service",)
    )
    lab_host._select_units(image_root, services)
    assert enabled(image_root) == {
        "radvd.service": "/lib/systemd/system/radvd.service",  # linked as systemctl would
        "ssh.service": "/lib/systemd/system/ssh.service",  # named by no group: untouched
    }


def test_an_already_enabled_unit_is_left_as_it_is(image_root: Path) -> None:
    before = enabled(image_root)
    lab_host._select_units(image_root, HostServices(enabled_units=("postgresql.service",)))
    assert enabled(image_root) == before


def test_units_no_package_provides_or_masked_are_missing(image_root: Path) -> None:
    assert lab_host.missing_units(
        image_root, ["postgresql.service", "nginx.service", "auditd.service"]
    ) == ["nginx.service", "auditd.service"]


def test_the_init_script_starts_each_group_in_parallel_and_stops_in_reverse() -> None:
    services = HostServices(
        start_blocks=(("install -d /run/postgresql", "pg_ctlcluster 15 main start"), ("radvd",)),
        stop_commands=("killall radvd", "pg_ctlcluster 15 main stop"),
    )
    assert init_script(services) == (
        "stop() {\n"
        "  /etc/init.d/ssh stop || true\n"
        "  killall radvd || true\n"
        "  pg_ctlcluster 15 main stop || true\n"
        "  exit 0\n"
        "}\n"
        "trap stop TERM INT\n"
        "{\ninstall -d /run/postgresql\npg_ctlcluster 15 main start\n} &\n"
        "{\nradvd\n} &\n"
        "/etc/init.d/ssh start\n"
        "while :; do sleep 3600 & wait $!; done\n"
    )


def test_without_services_only_sshd_runs() -> None:
    script = init_script(HostServices())
    assert "&\n/etc/init.d/ssh start" not in script
    assert "stop() {\n  /etc/init.d/ssh stop || true\n  exit 0\n}" in script


def test_lab_up_refuses_units_the_image_lacks_before_starting_anything(
    image_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lab.yml").write_text(
        "groups:\n  web:\n    units: [nginx.service]\n  db:\n    units: [postgresql.service]\n"
    )
    description: LabDescription = load_lab_file(tmp_path / "lab.yml")
    monkeypatch.setattr(lab_engine, "ensure_packages_for", lambda flavour: flavour)
    monkeypatch.setattr(
        lab_engine, "ensure_image", lambda cache, recipe: Image("k", tmp_path / "a", image_root)
    )
    state = tmp_path / "state"
    with pytest.raises(LabError) as caught:
        lab_engine.up(
            state,
            tmp_path,
            [lab_engine.HostSpec("web1", ("web",))],
            "nspawn",
            description=description,
        )
    assert str(caught.value) == (
        f"{tmp_path / 'lab.yml'}: no package in the lab image provides nginx.service: "
        "add its package to image.installed"
    )
    assert not state.exists()
