"""`cityguard demo`: its steps as the help and the README say them, the exit code, the secrets
of a run, the restic repositories it makes, and the clean-up that happens whatever happens.
The demo itself runs on real lab hosts, Keycloak and restic (`make demo`)."""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from cityguard.cli import demo
from cityguard.cli.demo import (
    STEPS,
    SecretEnv,
    StepResult,
    Steps,
    keycloak_address,
    overall,
    read_repositories,
    remove_repositories,
    sigterm_as_interrupt,
    summary_rows,
    write_repositories,
)
from cityguard.cli.main import build_parser
from cityguard.config import content_root
from cityguard.core.context import Context
from cityguard.core.errors import CityguardError, UsageError
from cityguard.core.exitcodes import ExitCode
from cityguard.core.secrets import SecretRef, redact
from cityguard.lab.keycloak import LocalKeycloak

README = content_root() / "README.md"
EXAMPLE_SITE = content_root() / "examples" / "site" / "site.yml"


def recording() -> tuple[Context, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(Console(file=out, width=200), Console(file=err, width=200))
    return ctx, out, err


# --- what it says it does ---------------------------------------------------------------------


def test_the_help_lists_every_step_in_order() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = commands.choices["demo"].format_help()
    positions = [text.index(f"{number}. {step}") for number, step in enumerate(STEPS, 1)]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "step",
    ["lab up", "harden", "ipv6 rollout", "check", "backup", "drill", "eidas", "lab down"],
)
def test_the_readme_first_command_and_the_short_help_name_every_area(step: str) -> None:
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("make demo"))
    comment = [lines[start], *takewhile(lambda line: line.startswith(" "), lines[start + 1 :])]
    assert step in " ".join(line.strip().lstrip("#") for line in comment)
    assert step in demo.HELP


# --- exit code and summary --------------------------------------------------------------------


def test_the_exit_code_is_the_highest_of_the_steps() -> None:
    results = [
        StepResult("harden", ExitCode.OK),
        StepResult("check", ExitCode.FAILED),
        StepResult("backup a", ExitCode.PARTIAL),
        StepResult("drill a", None, "no backup of a in this run"),
    ]
    assert overall(results) is ExitCode.PARTIAL
    assert overall(results[:2]) is ExitCode.FAILED
    assert overall([StepResult("drill a", None, "skipped")]) is ExitCode.OK
    assert overall([]) is ExitCode.OK


def test_the_summary_says_each_step_and_why_one_did_not_run() -> None:
    rows = summary_rows(
        [
            StepResult("check", ExitCode.FAILED),
            StepResult("drill a", None, "no backup of a in this run"),
            StepResult("eidas apply", ExitCode.PARTIAL),
        ]
    )
    assert rows == [
        ("check", "1", "failed"),
        ("drill a", "-", "not run: no backup of a in this run"),
        ("eidas apply", "3", "partial: a step could not run"),
    ]


def test_a_failing_step_is_printed_counted_and_the_demo_goes_on() -> None:
    ctx, out, err = recording()
    steps = Steps(ctx)

    def broken() -> tuple[None, ExitCode]:
        raise CityguardError("restic: wrong repository password")

    assert steps.run("backup a", broken) is None
    assert not steps.last_ok
    assert steps.run("backup b", lambda: ("value", ExitCode.OK)) == "value"
    assert steps.last_ok
    steps.skip("drill a", "no backup of a in this run")
    assert steps.results == [
        StepResult("backup a", ExitCode.PARTIAL),
        StepResult("backup b", ExitCode.OK),
        StepResult("drill a", None, "no backup of a in this run"),
    ]
    assert "error: restic: wrong repository password" in err.getvalue()
    assert "drill a: not run: no backup of a in this run" in out.getvalue()


# --- Keycloak's address -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("http://localhost:8181", ("127.0.0.1", 8181)),
        ("http://[::1]:8080", ("::1", 8080)),
        ("http://127.0.0.1", ("127.0.0.1", 80)),
    ],
)
def test_keycloak_starts_where_the_site_says_it_is(url: str, address: tuple[str, int]) -> None:
    assert keycloak_address(url) == address


def test_the_demo_keycloak_serves_plain_http_only() -> None:
    with pytest.raises(UsageError, match=r"^eidas.url: https://127.0.0.1:8443: .* http:// only$"):
        keycloak_address("https://127.0.0.1:8443")


# --- secrets of a run -------------------------------------------------------------------------


def test_secrets_are_generated_once_per_variable_redacted_and_put_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CG_DEMO_TEST_KEPT", "the operator's")
    monkeypatch.delenv("CG_DEMO_TEST_NEW", raising=False)
    env = SecretEnv()
    env.generate("CG_DEMO_TEST_NEW")
    first = os.environ["CG_DEMO_TEST_NEW"]
    env.generate("CG_DEMO_TEST_NEW")  # two plans sharing one variable share the password
    assert os.environ["CG_DEMO_TEST_NEW"] == first and len(first) >= 24
    env.generate("CG_DEMO_TEST_KEPT")
    assert os.environ["CG_DEMO_TEST_KEPT"] != "the operator's"
    assert redact(f"password {first}") == "password (redacted)"
    env.restore()
    assert "CG_DEMO_TEST_NEW" not in os.environ
    assert os.environ["CG_DEMO_TEST_KEPT"] == "the operator's"


# --- the restic repositories it makes ---------------------------------------------------------


def test_only_the_repositories_a_demo_listed_are_removed(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "repos" / "a", tmp_path / "repos" / "b"
    for path in (ours, theirs):
        (path / "data").mkdir(parents=True)
    gone = tmp_path / "repos" / "never-made"
    write_repositories(tmp_path, [ours, gone, ours])
    assert read_repositories(tmp_path) == [ours, gone]
    assert remove_repositories(tmp_path) == [ours]
    assert not ours.exists() and theirs.exists()
    assert read_repositories(tmp_path) == []
    assert not (tmp_path / demo.REPOSITORIES_FILE).exists()
    assert remove_repositories(tmp_path) == []


@pytest.mark.parametrize("text", ["{not json", '{"a": 1}', '[1, ""]'])
def test_an_unreadable_list_removes_nothing(tmp_path: Path, text: str) -> None:
    (tmp_path / demo.REPOSITORIES_FILE).write_text(text)
    assert read_repositories(tmp_path) == []


# --- SIGTERM and clean-up ---------------------------------------------------------------------


@pytest.fixture
def default_sigterm() -> Iterator[None]:
    """SIGTERM as a process starts with it (the test session installs a handler of its own)."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_ends_the_steps_as_ctrl_c_does(default_sigterm: None) -> None:
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_someone_elses_sigterm_handler_is_left_alone() -> None:
    def theirs(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, theirs)
    try:
        with sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is theirs
        assert signal.getsignal(signal.SIGTERM) is theirs
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Stage:
    """The demo's run with the lab, Keycloak and the steps replaced by recorders."""

    events: list[str] = field(default_factory=list)
    keycloak: LocalKeycloak | None = None


@pytest.fixture
def stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stage:
    from cityguard.lab import keycloak as launcher
    from cityguard.lab import site as lab_site

    staged = Stage()
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path / "state"))

    def up(site: Any) -> Any:
        staged.events.append("lab up")
        return SimpleNamespace(lab_id="abc123", hosts=[SimpleNamespace(name="db1")])

    def start(**kwargs: Any) -> LocalKeycloak:
        staged.events.append(f"keycloak start {kwargs['host']}:{kwargs['port']}")
        data = tmp_path / "keycloak-data"
        data.mkdir()
        staged.keycloak = LocalKeycloak("http://127.0.0.1:8080", "admin", "pw", data, None)
        return staged.keycloak

    monkeypatch.setattr(lab_site, "up_for_site", up)
    monkeypatch.setattr(lab_site, "down_for_site", lambda site: staged.events.append("lab down"))
    monkeypatch.setattr(launcher, "start", start)
    return staged


def demo_args() -> argparse.Namespace:
    return argparse.Namespace(site=EXAMPLE_SITE, keep_lab=False)


def test_keycloak_starts_before_the_lab_and_both_go_whatever_the_steps_do(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def steps(steps: Steps, *args: Any) -> None:
        stage.events.append("steps")
        steps.results += [StepResult("harden", ExitCode.OK), StepResult("check", ExitCode.FAILED)]
        steps.results.append(StepResult("drill citizen-portal", ExitCode.PARTIAL))

    monkeypatch.setattr(demo, "_steps", steps)
    ctx, out, _ = recording()
    assert demo.run(demo_args(), ctx) is ExitCode.PARTIAL
    assert stage.events == ["keycloak start 127.0.0.1:8080", "lab up", "steps", "lab down"]
    assert stage.keycloak is not None and stage.keycloak.data_dir is not None
    assert not stage.keycloak.data_dir.exists(), "Keycloak stopped, its data removed"
    text = out.getvalue()
    assert re.search(r"drill citizen-portal\s+│\s+3\s+│\s+partial", text)
    assert "exit code 3 (the highest of the steps')" in text


def test_ctrl_c_still_stops_keycloak_and_takes_the_lab_down(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_steps", interrupted)
    ctx, _, _ = recording()
    with pytest.raises(KeyboardInterrupt):
        demo.run(demo_args(), ctx)
    assert stage.events[-1] == "lab down"
    assert stage.keycloak is not None and stage.keycloak.data_dir is not None
    assert not stage.keycloak.data_dir.exists()


def test_a_lab_that_does_not_come_up_still_stops_keycloak(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityguard.lab import LabError
    from cityguard.lab import site as lab_site

    def up(site: Any) -> Any:
        raise LabError("host db1 did not answer SSH within 90 s")

    monkeypatch.setattr(lab_site, "up_for_site", up)
    ctx, _, _ = recording()
    with pytest.raises(LabError):
        demo.run(demo_args(), ctx)
    assert "lab down" not in stage.events  # up removes what it made when it fails
    assert stage.keycloak is not None and stage.keycloak.data_dir is not None
    assert not stage.keycloak.data_dir.exists()


# --- backups and drills -----------------------------------------------------------------------


def fake_plan(tmp_path: Path, system: str) -> Any:
    return SimpleNamespace(
        system=system,
        password=SecretRef.env("CG_DEMO_TEST_RESTIC"),
        spec=SimpleNamespace(repository=SimpleNamespace(path=f"repos/{system}")),
        repository_location=str(tmp_path / "restic" / "repos" / system),
    )


def test_each_system_is_backed_up_and_drilled_and_a_failed_backup_skips_its_drill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityguard.drill import action, view

    plans = {s: fake_plan(tmp_path, s) for s in ("portal", "registry", "archive")}
    (tmp_path / "restic" / "repos" / "archive").mkdir(parents=True)  # not the demo's
    done: list[str] = []

    def backup_run(workspace: Any, system: str) -> Any:
        assert os.environ["CG_DEMO_TEST_RESTIC"], "the run's password is in place"
        done.append(f"backup {system}")
        code = ExitCode.PARTIAL if system == "registry" else ExitCode.OK
        return SimpleNamespace(exit_code=code)

    def drill_run(workspace: Any, system: str, say: Any) -> Any:
        done.append(f"drill {system}")
        return SimpleNamespace(exit_code=ExitCode.OK)

    monkeypatch.setattr(action, "load_area", lambda ws: SimpleNamespace(plans=plans))
    monkeypatch.setattr(action, "backup_init", lambda ws, system: f"{system}: created")
    monkeypatch.setattr(action, "backup_run", backup_run)
    monkeypatch.setattr(action, "drill_run", drill_run)
    monkeypatch.setattr(view, "backup_summary", lambda console, outcome: None)
    monkeypatch.setattr(view, "drill_summary", lambda console, outcome: None)
    monkeypatch.delenv("CG_DEMO_TEST_RESTIC", raising=False)

    ctx, _, err = recording()
    steps = Steps(ctx)
    env = SecretEnv()
    workspace = SimpleNamespace(site=SimpleNamespace(state_dir=tmp_path))
    demo._drills(steps, workspace, env, ready=True)  # type: ignore[arg-type]
    env.restore()

    assert done == ["backup portal", "backup registry", "drill portal"]
    assert [(r.name, r.code) for r in steps.results] == [
        ("backup portal", ExitCode.OK),
        ("backup registry", ExitCode.PARTIAL),
        ("backup archive", ExitCode.PARTIAL),
        ("drill portal", ExitCode.OK),
        ("drill registry", None),
        ("drill archive", None),
    ]
    assert "restic repository" in err.getvalue() and "no demo made it" in err.getvalue()
    # the demo's repositories are listed for removal, the one it did not make is not
    assert read_repositories(tmp_path) == [
        tmp_path / "restic" / "repos" / "portal",
        tmp_path / "restic" / "repos" / "registry",
    ]
    assert "CG_DEMO_TEST_RESTIC" not in os.environ


def test_without_sample_data_nothing_is_backed_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityguard.drill import action

    plans = {"portal": fake_plan(tmp_path, "portal")}
    monkeypatch.setattr(action, "load_area", lambda ws: SimpleNamespace(plans=plans))
    ctx, _, _ = recording()
    steps = Steps(ctx)
    workspace = SimpleNamespace(site=SimpleNamespace(state_dir=tmp_path))
    demo._drills(steps, workspace, SecretEnv(), ready=False)  # type: ignore[arg-type]
    assert steps.results == [
        StepResult("backup portal", None, "the sample data did not load"),
        StepResult("drill portal", None, "no backup of portal in this run"),
    ]


# --- eIDAS ------------------------------------------------------------------------------------


def eidas_settings() -> Any:
    from cityguard.config import load_site
    from cityguard.eidas.settings import EidasSettings

    return load_site(EXAMPLE_SITE).section("eidas", EidasSettings)


def test_a_keycloak_that_did_not_start_fails_apply_and_verify_does_not_run() -> None:
    from cityguard.lab import keycloak as launcher

    ctx, _, err = recording()
    steps = Steps(ctx)
    server = launcher.not_started("cityguard-admin", "cannot start Keycloak: the port is in use")
    demo._eidas(steps, EXAMPLE_SITE, server, eidas_settings(), SecretEnv())
    assert steps.results == [
        StepResult("eidas apply", ExitCode.PARTIAL),
        StepResult("eidas verify", None, "eidas apply did not run to its end"),
    ]
    assert "error: cannot start Keycloak: the port is in use" in err.getvalue()


def test_apply_then_verify_with_the_run_s_admin_password_and_client_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityguard.eidas import action, view

    settings = eidas_settings()
    server = LocalKeycloak("http://127.0.0.1:1", settings.admin_user, "adm-pw", None, None)
    server.ready_after_s = 1.0
    monkeypatch.setattr(LocalKeycloak, "probe", lambda self: True)
    monkeypatch.setenv("CITYGUARD_STATE", str(tmp_path))
    for name in (settings.admin_password_env, "CITYGUARD_EIDAS_PORTAL_SECRET"):
        monkeypatch.delenv(name, raising=False)
    seen: list[tuple[str, str, bool]] = []

    def applied(eidas: Any) -> Any:
        password = os.environ[settings.admin_password_env]
        seen.append(("apply", password, bool(os.environ["CITYGUARD_EIDAS_PORTAL_SECRET"])))
        return SimpleNamespace(exit_code=ExitCode.OK)

    def verified(eidas: Any) -> Any:
        seen.append(("verify", os.environ[settings.admin_password_env], True))
        return SimpleNamespace(exit_code=ExitCode.FAILED)

    monkeypatch.setattr(action, "apply", applied)
    monkeypatch.setattr(action, "verify", verified)
    monkeypatch.setattr(view, "show", lambda console, outcome: None)
    ctx, out, _ = recording()
    steps = Steps(ctx)
    env = SecretEnv()
    demo._eidas(steps, EXAMPLE_SITE, server, settings, env)
    env.restore()
    assert seen == [("apply", "adm-pw", True), ("verify", "adm-pw", True)]
    assert steps.results == [
        StepResult("eidas apply", ExitCode.OK),
        StepResult("eidas verify", ExitCode.FAILED),
    ]
    assert "Keycloak answers at http://127.0.0.1:1 (started" in out.getvalue()
    assert "adm-pw" not in out.getvalue()
    assert settings.admin_password_env not in os.environ
