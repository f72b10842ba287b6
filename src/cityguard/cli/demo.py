"""Registers `cityguard demo`: the main job of every area on the example site, start to finish.

Keycloak is started first, in the background, so its minute-long start overlaps the lab's and
the hosts' work; then lab up, harden, the IPv6 rollout, check, the sample data (`lab data`),
a backup and a restore drill of each information system, eIDAS apply and verify of the example
realm against that Keycloak, and a summary. Keycloak is stopped and the lab removed whatever
happens (a failed step, Ctrl-C, SIGTERM).

A failed step is said and counted, and the steps that do not depend on it still run; the exit
code is the highest of the steps' codes, so the demo never ends green over a failure.

Secrets (the restic repositories' password, the Keycloak admin password, the realm's client
secrets) are generated for each run, registered for redaction and handed to the areas through
the environment variables the site names, never printed nor written down. The restic
repositories the demo makes can therefore never be opened again: they are removed when it
ends (and, should a demo have been killed, when the next one starts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from cityguard.core.context import Context
from cityguard.core.errors import CityguardError, UsageError
from cityguard.core.exitcodes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from cityguard.config import Site
    from cityguard.drill.plan import Plan
    from cityguard.eidas.settings import EidasSettings
    from cityguard.lab.keycloak import LocalKeycloak
    from cityguard.workspace import Workspace

#: What the demo does, in order; its help and the README's first command say the same.
STEPS = (
    "lab up (Keycloak starts meanwhile, in the background, on loopback)",
    "harden",
    "ipv6 rollout",
    "check",
    "sample data: databases and file trees, restore target isolated (lab data)",
    "backup of each information system",
    "restore drill of each, with measured RTO and RPO",
    "eidas apply and verify of the example realm",
    "summary, then lab down and Keycloak stopped",
)
HELP = (
    "the main job of every area on the example site: lab up (Keycloak in the background), "
    "harden, ipv6 rollout, check, sample data, backup and restore drill of each system, "
    "eidas apply and verify, summary, lab down"
)
DESCRIPTION = (
    "Runs on the example site (or --site):\n"
    + "\n".join(f"  {number}. {step}" for number, step in enumerate(STEPS, 1))
    + "\n\nSecrets (restic, Keycloak admin, client secrets) are generated for the run and "
    "never shown.\nThe exit code is the highest of the steps' exit codes."
)
#: Where the demo lists the restic repositories it made (paths only, no secret), so that those
#: of a demo that was killed are removed by the next one and no other repository ever is.
REPOSITORIES_FILE = "demo-repositories.json"
LOCAL_HOSTNAMES = {
    "localhost": "127.0.0.1",
    "localhost.localdomain": "127.0.0.1",
    "ip6-localhost": "::1",
}

T = TypeVar("T")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    # its own --site, not the common options': argparse shares a parent's option objects
    # between the commands, so a default set here would become every command's default
    del common
    demo = commands.add_parser(
        "demo",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--site", type=Path, default=None, help="site file (default: the example site)"
    )
    demo.add_argument("--keep-lab", action="store_true", help="leave the lab up afterwards")
    demo.set_defaults(func=run)


# --- pure parts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """One step's exit code, or None when it did not run (``note`` says why)."""

    name: str
    code: ExitCode | None
    note: str = ""


MEANING = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "failed",
    ExitCode.USAGE: "usage or configuration error",
    ExitCode.PARTIAL: "partial: a step could not run",
    ExitCode.INTERNAL: "internal error",
}


def overall(results: Sequence[StepResult]) -> ExitCode:
    """The demo's exit code: the highest of the steps' exit codes (a failure is never hidden)."""
    return max((r.code for r in results if r.code is not None), default=ExitCode.OK)


def summary_rows(results: Sequence[StepResult]) -> list[tuple[str, str, str]]:
    """(step, exit code, what it means) per step, for the summary table."""
    rows = []
    for result in results:
        if result.code is None:
            rows.append((result.name, "-", f"not run: {result.note}"))
            continue
        meaning = MEANING.get(result.code, str(result.code))
        rows.append((result.name, str(int(result.code)), f"{meaning}{_suffix(result.note)}"))
    return rows


def _suffix(note: str) -> str:
    return f" ({note})" if note else ""


def keycloak_address(url: str) -> tuple[str, int]:
    """Host and port to start the demo's Keycloak on, from the site's ``eidas.url``.

    The demo's Keycloak serves plain HTTP (development mode) on loopback.
    """
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise UsageError(
            f"eidas.url: {url}: the demo starts Keycloak in development mode, on http:// only"
        )
    host = parts.hostname or "127.0.0.1"
    return LOCAL_HOSTNAMES.get(host, host), parts.port or 80


def read_repositories(state_dir: Path) -> list[Path]:
    """The repositories a demo made and has not removed yet (a killed demo leaves them)."""
    try:
        data = json.loads((state_dir / REPOSITORIES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: nothing known to remove
        return []
    if not isinstance(data, list):
        return []
    return [Path(item) for item in data if isinstance(item, str) and item]


def write_repositories(state_dir: Path, paths: Sequence[Path]) -> None:
    path = state_dir / REPOSITORIES_FILE
    if not paths:
        path.unlink(missing_ok=True)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([str(p) for p in dict.fromkeys(paths)], indent=2) + "\n")


def remove_repositories(state_dir: Path) -> list[Path]:
    """Remove the repositories the demo's list names (only those) and the list; returns the
    ones removed. Their password was a past run's, so nobody can open them any more."""
    removed = []
    for path in read_repositories(state_dir):
        if path.exists():
            shutil.rmtree(path)
            removed.append(path)
    write_repositories(state_dir, [])
    return removed


def foreign_repository_problem(path: Path) -> str:
    return (
        f"restic repository {path} exists and no demo made it: the demo backs up with a "
        "password of its own run, which cannot open it; move it away to run the demo's backups"
    )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the steps run, SIGTERM (a cancelled job, `timeout`) ends the demo as Ctrl-C does,
    so Keycloak is stopped and the lab removed; a second SIGTERM ends it at once."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield  # not ours to change: whoever set another handler stops us
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass
class SecretEnv:
    """Secrets of this run, handed over in environment variables; put back as they were."""

    previous: dict[str, str | None] = field(default_factory=dict)

    def set(self, name: str, value: str) -> None:
        from cityguard.core.secrets import register_secret

        register_secret(value)
        self.previous.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def generate(self, name: str) -> None:
        """A new random secret in ``name``, once per run (plans sharing a variable share it)."""
        if name not in self.previous:
            self.set(name, secrets.token_urlsafe(24))

    def restore(self) -> None:
        for name, value in self.previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.previous.clear()


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Steps:
    """Runs the steps: a CityguardError is printed and counted, and the demo goes on."""

    ctx: Context
    results: list[StepResult] = field(default_factory=list)

    def run(self, name: str, action: Callable[[], tuple[T, ExitCode]]) -> T | None:
        """The action's value, or None when it raised (its lines printed, its code counted)."""
        try:
            value, code = action()
        except CityguardError as error:
            self.error(name, error)
            return None
        self.results.append(StepResult(name, code))
        return value

    def error(self, name: str, error: CityguardError) -> None:
        for line in error.lines():
            self.ctx.err.print(line, style="red", markup=False, highlight=False)
        self.results.append(StepResult(name, error.exit_code))

    @property
    def last_ok(self) -> bool:
        return bool(self.results) and self.results[-1].code == ExitCode.OK

    def skip(self, name: str, why: str) -> None:
        self.ctx.out.print(f"{name}: not run: {why}", markup=False, highlight=False)
        self.results.append(StepResult(name, None, why))


def run(args: argparse.Namespace, ctx: Context) -> ExitCode:
    """Keycloak in the background, then every area's main job; lab down and Keycloak stopped
    also when a step fails or the demo is interrupted."""
    from cityguard.config import content_root, load_site
    from cityguard.eidas.settings import EidasSettings
    from cityguard.lab.site import down_for_site, up_for_site

    started = time.monotonic()
    console = ctx.out
    site_path = args.site or content_root() / "examples" / "site" / "site.yml"
    site = load_site(site_path)
    steps = Steps(ctx)
    env = SecretEnv()
    eidas_settings = site.section("eidas", EidasSettings)
    keycloak: LocalKeycloak | None = None
    try:
        with sigterm_as_interrupt():
            console.rule(f"1/{len(STEPS)} lab up")
            keycloak = _start_keycloak(ctx, eidas_settings)
            lab = up_for_site(site)
            console.print(f"lab {lab.lab_id}: {', '.join(h.name for h in lab.hosts)}")
            steps.results.append(StepResult("lab up", ExitCode.OK))
            try:
                _steps(steps, site, site_path, keycloak, eidas_settings, env)
                console.rule(f"{len(STEPS)}/{len(STEPS)} summary")
                _summary(console, steps.results, time.monotonic() - started)
                return overall(steps.results)
            finally:
                if args.keep_lab:
                    console.print("lab kept: 'cityguard lab down' removes it")
                else:
                    down_for_site(site)
                    console.print(f"lab {lab.lab_id} removed")
    finally:
        if keycloak is not None:
            keycloak.stop()
            console.print("Keycloak stopped, its data removed", markup=False)
        for path in remove_repositories(site.state_dir):
            console.print(f"removed the demo's restic repository {path}", markup=False)
        env.restore()


def _start_keycloak(ctx: Context, settings: EidasSettings | None) -> LocalKeycloak | None:
    """Start the site's Keycloak in the background (from this, the main, thread: it must
    outlive the start), or say why there is none; the eidas step reports any problem."""
    from cityguard.lab import keycloak as launcher

    if settings is None:
        return None
    try:
        host, port = keycloak_address(settings.url)
    except UsageError as error:
        server = launcher.not_started(settings.admin_user, str(error))
    else:
        server = launcher.start(host=host, port=port, admin_user=settings.admin_user)
    if server.error is not None:
        ctx.err.print(f"Keycloak: {server.error}", style="yellow", markup=False)
    else:
        ctx.out.print(
            f"Keycloak {launcher.version()} starting in the background on {server.url} "
            f"(admin {server.admin_user}, password generated for this run)",
            markup=False,
            highlight=False,
        )
    return server


def _steps(
    steps: Steps,
    site: Site,
    site_path: Path,
    keycloak: LocalKeycloak | None,
    eidas_settings: EidasSettings | None,
    env: SecretEnv,
) -> None:
    from cityguard.check.action import check
    from cityguard.harden.action import harden
    from cityguard.harden.view import harden_summary
    from cityguard.ipv6.rollout_action import ipv6_rollout
    from cityguard.ipv6.view import rollout_summary
    from cityguard.workspace import open_workspace

    console = steps.ctx.out
    total = len(STEPS)
    workspace = open_workspace(site_path)

    console.rule(f"2/{total} harden")

    def do_harden() -> tuple[None, ExitCode]:
        hardened = harden(workspace, console=console)
        harden_summary(console, hardened)
        return None, hardened.exit_code

    steps.run("harden", do_harden)

    console.rule(f"3/{total} ipv6 rollout")

    def do_rollout() -> tuple[None, ExitCode]:
        rolled = ipv6_rollout(
            workspace, say=lambda line: console.print(line, markup=False, highlight=False)
        )
        rollout_summary(console, rolled, check=False)
        return None, rolled.exit_code

    steps.run("ipv6 rollout", do_rollout)

    console.rule(f"4/{total} check")

    def do_check() -> tuple[Any, ExitCode]:
        checked = check(workspace, console=console)
        return checked, checked.exit_code

    checked = steps.run("check", do_check)
    if checked is not None:
        _check_summary(console, checked)

    console.rule(f"5/{total} sample data")
    loaded = steps.run("sample data", lambda: (_sample_data(console, site), ExitCode.OK))
    _drills(steps, workspace, env, ready=loaded is not None)

    console.rule(f"8/{total} eidas")
    _eidas(steps, site_path, keycloak, eidas_settings, env)


def _check_summary(console: Console, checked: Any) -> None:
    from cityguard.evidence.view import check_summary

    check_summary(console, checked.controls, checked.hosts, checked.run_id)
    ipv6_unmet = sorted(
        {
            c.host
            for c in checked.controls
            if c.control_id.startswith("CG-IPV6-") and c.outcome.value in ("fail", "error")
        }
    )
    if ipv6_unmet:  # said, and counted in the exit code: never hidden to end green
        console.print(f"IPv6: the IPv6 controls (CG-IPV6-*) do not pass on {', '.join(ipv6_unmet)}")


def _sample_data(console: Console, site: Site) -> bool:
    from cityguard.lab.site import data_for_site

    description = data_for_site(
        site, say=lambda line: console.print(line, markup=False, highlight=False)
    )
    if description.data.empty():
        console.print(f"{description.source}: no sample data", markup=False)
    return True


def _drills(steps: Steps, workspace: Workspace, env: SecretEnv, *, ready: bool) -> None:
    """A backup of each plan's system, then a restore drill of each system backed up."""
    from cityguard.core.secrets import SecretSource
    from cityguard.drill.action import backup_init, backup_run, drill_run, load_area
    from cityguard.drill.view import backup_summary, drill_summary

    console = steps.ctx.out
    total = len(STEPS)
    console.rule(f"6/{total} backup")
    try:
        plans: dict[str, Plan] = load_area(workspace).plans
    except CityguardError as error:
        steps.error("backup", error)
        return
    backed_up: list[str] = []
    state = workspace.site.state_dir
    for path in remove_repositories(state):
        console.print(f"removed {path}, left by an interrupted demo", markup=False)
    made: list[Path] = []
    for system, plan in plans.items():
        name = f"backup {system}"
        if not ready:
            steps.skip(name, "the sample data did not load")
            continue
        if plan.password.source is SecretSource.ENV:
            env.generate(plan.password.name)
        if plan.spec.repository.path is not None:
            repository = Path(plan.repository_location)
            if repository.exists():
                steps.error(name, CityguardError(foreign_repository_problem(repository)))
                continue
            made.append(repository)
            write_repositories(state, made)  # listed before it exists: a kill leaves no orphan

        def do_backup(system: str = system) -> tuple[None, ExitCode]:
            console.print(backup_init(workspace, system), markup=False, highlight=False)
            outcome = backup_run(workspace, system)
            backup_summary(console, outcome)
            return None, outcome.exit_code

        steps.run(name, do_backup)
        if steps.last_ok:
            backed_up.append(system)

    console.rule(f"7/{total} drill")
    for system in plans:
        name = f"drill {system}"
        if system not in backed_up:
            steps.skip(name, f"no backup of {system} in this run")
            continue

        def do_drill(system: str = system) -> tuple[None, ExitCode]:
            outcome = drill_run(
                workspace, system, lambda line: console.print(line, markup=False, highlight=False)
            )
            drill_summary(console, outcome)
            return None, outcome.exit_code

        steps.run(name, do_drill)


def _eidas(
    steps: Steps,
    site_path: Path,
    keycloak: LocalKeycloak | None,
    settings: EidasSettings | None,
    env: SecretEnv,
) -> None:
    """eidas apply, then verify, of the site's realm on the demo's Keycloak."""
    from cityguard.core.secrets import SecretSource
    from cityguard.eidas import action
    from cityguard.eidas.view import show

    console = steps.ctx.out
    if settings is None or keycloak is None:
        steps.skip("eidas", "the site has no eidas section")
        return

    def apply() -> tuple[action.EidasContext, ExitCode]:
        if settings.admin_password_env is None:
            raise UsageError(
                "eidas: the demo hands its Keycloak's admin password over in an environment "
                "variable: the site's eidas section must name admin_password_env"
            )
        if keycloak.error is None and not keycloak.probe():
            console.print("waiting for Keycloak", markup=False)
        keycloak.wait_ready()
        console.print(
            f"Keycloak answers at {keycloak.url} "
            f"(started {time.monotonic() - keycloak.started_at:.0f} s ago)",
            markup=False,
            highlight=False,
        )
        env.set(settings.admin_password_env, keycloak.admin_password)
        eidas = action.open_eidas(site_path)
        for ref in eidas.spec.client_secrets.values():
            if ref.source is SecretSource.ENV:
                env.generate(ref.name)
        applied = action.apply(eidas)
        show(console, applied)
        return eidas, applied.exit_code

    eidas = steps.run("eidas apply", apply)
    if eidas is None:
        steps.skip("eidas verify", "eidas apply did not run to its end")
        return

    def verify(eidas: action.EidasContext = eidas) -> tuple[None, ExitCode]:
        verified = action.verify(eidas)
        show(console, verified)
        return None, verified.exit_code

    steps.run("eidas verify", verify)


def _summary(console: Console, results: Sequence[StepResult], seconds: float) -> None:
    from rich.table import Table

    table = Table(title="cityguard demo")
    for column in ("step", "exit code", "result"):
        table.add_column(column)
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    minutes, rest = divmod(int(seconds), 60)
    console.print(
        f"demo: {minutes} min {rest} s; exit code {int(overall(results))} "
        "(the highest of the steps')",
        markup=False,
    )
