"""Lab fixtures: one lab for the whole test session, always torn down, also on failure.

The lab's state lives in a short temporary directory (unix socket paths are length-limited),
handed to cityguard through CITYGUARD_STATE only while a test that uses the lab runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

# the session's Keycloak for the eIDAS tests: started in the background right after collection
from keycloak_server import keycloak, pytest_collection_finish, pytest_unconfigure  # noqa: F401

from cityguard.cli.main import build_parser
from cityguard.config import content_root, load_site
from cityguard.lab import Lab, LabError
from cityguard.lab import lab as lab_engine
from cityguard.lab.site import up_for_site

EXAMPLE_SITE = content_root() / "examples" / "site" / "site.yml"


@dataclass(frozen=True)
class LabSession:
    site_file: Path
    state_dir: Path
    lab: Lab

    def ssh(self, host: str, command: str) -> str:
        """Run a command on a lab host as root over a fresh connection; returns stdout."""
        completed = subprocess.run(
            [
                "ssh",
                "-F",
                str(self.lab.ssh_config),
                "-o",
                "ControlPath=none",
                host,
                f"sudo sh -c {shlex.quote(command)}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0:
            raise AssertionError(f"ssh {host} {command!r}: {completed.stderr.strip()}")
        return completed.stdout


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (bridges, mounts, systemd-nspawn)")


@pytest.fixture(scope="session")
def root() -> None:
    """Lab tests need real root; under CI=true the skip counts as a failure."""
    require_root()


@pytest.fixture(scope="session")
def lab_session(root: None) -> Iterator[LabSession]:
    state_dir = Path(tempfile.mkdtemp(prefix="cgt-", dir="/tmp"))
    lab: Lab | None = None
    build_parser()  # registers the areas' site sections, as the command line does
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CITYGUARD_STATE", str(state_dir))
            site = load_site(EXAMPLE_SITE)
        try:
            lab = up_for_site(site)
        except LabError as error:
            pytest.fail(f"lab did not come up: {error}")
        yield LabSession(EXAMPLE_SITE, state_dir, lab)
    finally:
        try:
            lab_engine.down(state_dir)
        finally:
            if lab is not None:
                lab_engine.remove_leftovers(lab_engine.find_leftovers(lab.lab_id))
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def lab(lab_session: LabSession, monkeypatch: pytest.MonkeyPatch) -> LabSession:
    monkeypatch.setenv("CITYGUARD_STATE", str(lab_session.state_dir))
    return lab_session


@pytest.fixture(scope="session")
def strict_site(lab_session: LabSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example site (same name, so the same lab) on the strict baseline, with a 20 s
    lockout guard: a change that locks sudo out is rolled back after 20 s, not 60 (the
    lockout tests prove that a guarded change still completes within 20 s)."""
    target = tmp_path_factory.mktemp("strict") / "site"
    shutil.copytree(lab_session.site_file.parent, target)
    site = yaml.safe_load((target / "site.yml").read_text())
    site["baseline"] = "municipal-server-strict"
    (target / "site.yml").write_text(yaml.safe_dump(site))
    inventory = yaml.safe_load((target / "inventory.yml").read_text())
    inventory.setdefault("all", {}).setdefault("vars", {})["ssh_guard_timeout"] = 20
    (target / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return target / "site.yml"
