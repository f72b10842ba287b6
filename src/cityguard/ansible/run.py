"""Run a playbook through ansible-runner and turn what happened into typed results.

Through ansible-runner, not a hand-built command line: it keeps every event and the raw stdout
under the run directory (evidence for auditors) and passes extra vars in a 0600 file, not argv
where any local user could read them. Conversions are pure functions, tested on recorded events.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cityguard.ansible.events import (
    PlaybookResult,
    host_stats_from_runner,
    read_task_tags,
    task_results_from_events,
)
from cityguard.core.errors import CityguardError
from cityguard.core.secrets import redact

#: Called with each raw runner event as it arrives; the caller owns any display.
EventHandler = Callable[[Mapping[str, Any]], object]

TAGS_FILE = "cityguard_task_tags.jsonl"  # in the artifacts dir, next to job_events/
# Runner writes these under run_dir/env/ only when absent, then reads them on every later run:
# a stale cmdline would silently put a real run in check mode, stale extravars would leak in.
_STALE_ENV_FILES = ("envvars", "extravars", "cmdline")
# Runner 2.4 events carry no task tags: this callback, shipped with cityguard, records each
# task's effective tags by task uuid (a file in the package, so a killed run leaves no temp dir).
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
#: The only variables of cityguard's own environment that Ansible sees (plus what cityguard and
#: runner set for the run). Everything else, a site's passwords and tokens above all, stays out
#: of ansible-playbook's environment and of runner's record of it (artifacts/<ident>/command),
#: whatever the variables are called, and also when the run is killed.
INHERITED_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TERM",
        "NO_COLOR",
        "SSH_AUTH_SOCK",  # a path to the agent: the keys stay in the agent
        "ANSIBLE_HOST_KEY_CHECKING",
        "ANSIBLE_CONFIG",
    }
)
INHERITED_ENV_PREFIXES = ("LC_",)


class AnsibleError(CityguardError):
    """ansible-runner could not start the playbook at all; a failed playbook is a result."""


@dataclass(frozen=True)
class PlaybookRequest:
    """Everything one run needs; run_dir is runner's private_data_dir and keeps the artifacts."""

    project_dir: Path
    playbook: str
    inventory: Path
    run_dir: Path
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    check: bool = False  # check mode always shows diffs: the point is to see what would change
    diff: bool = False
    extra_vars: dict[str, Any] = field(default_factory=dict)
    forks: int = 10
    env: dict[str, str] = field(default_factory=dict)


def _host_key_checking(cfg: Path) -> str:
    """The project's host_key_checking (default on), passed on as an environment variable.

    Runner sets ANSIBLE_HOST_KEY_CHECKING=False unless the environment has it, overriding
    ansible.cfg and accepting any SSH host key."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        parser.read(cfg, encoding="utf-8")
        return parser.get("defaults", "host_key_checking", fallback="True")
    except configparser.Error:
        return "True"


def _envvars(request: PlaybookRequest, tags_file: Path) -> dict[str, str]:
    """What cityguard sets for the run, on top of the allowed part of its own environment."""
    env = dict(request.env)
    # Runner starts ansible-playbook by name: without this venv's bin first it fails (rc 127).
    path = env.get("PATH", os.environ.get("PATH", os.defpath))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    cfg = request.project_dir / "ansible.cfg"
    if cfg.is_file():
        env.setdefault("ANSIBLE_CONFIG", str(cfg.resolve()))
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        env.setdefault("ANSIBLE_HOST_KEY_CHECKING", _host_key_checking(cfg))
    callbacks = env.get("ANSIBLE_CALLBACK_PLUGINS")
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join(filter(None, [str(CALLBACK_DIR), callbacks]))
    env["CITYGUARD_TASK_TAGS_FILE"] = str(tags_file)
    return env


def allowed_environment(
    prepared: Mapping[str, str], inherited: Mapping[str, str], passed: Mapping[str, str]
) -> dict[str, str]:
    """The environment ansible-playbook gets: ``prepared`` (runner's, seeded with all of
    ``inherited``) without the inherited variables that are not on the allow-list.

    A variable stays when cityguard passed it, when runner set or changed it (its callback
    directory, stdout callback, fact cache), or when it is allowed by name. Registered secrets
    are removed from every value that is left, before runner writes the environment down.
    """
    env: dict[str, str] = {}
    for name, value in prepared.items():
        set_for_run = name in passed or inherited.get(name) != value
        allowed = name in INHERITED_ENV or name.startswith(INHERITED_ENV_PREFIXES)
        if set_for_run or allowed:
            env[name] = redact(value) if isinstance(value, str) else value
    return env


def _preflight(request: PlaybookRequest, env: Mapping[str, str]) -> None:
    """Refuse early, in one line, what runner would report late or confusingly.

    A missing playbook only shows as rc 1 with no events, and a missing inventory path is taken
    by Ansible for a host name that it then tries to reach over SSH.
    """
    where = f"cannot run {request.playbook}"
    if not request.project_dir.is_dir():
        raise AnsibleError(f"{where}: project directory {request.project_dir} does not exist")
    if not (request.project_dir / request.playbook).is_file():
        raise AnsibleError(f"{where}: playbook not found in {request.project_dir}")
    if not request.inventory.exists():
        raise AnsibleError(f"{where}: inventory {request.inventory} does not exist")
    passed = json.dumps([request.extra_vars, request.env], default=str)
    if redact(passed) != passed:
        # runner writes both to the run directory in clear before the play starts
        raise AnsibleError(
            f"{where}: a secret is among its extra vars or environment; a play that needs one "
            "reads it from its file or credential on the host, in a no_log task"
        )
    if shutil.which("ansible-playbook", path=env["PATH"]) is None:
        raise AnsibleError(f"{where}: ansible-playbook not found on PATH {env['PATH']}")
    try:
        request.run_dir.mkdir(parents=True, exist_ok=True)
        for name in _STALE_ENV_FILES:
            (request.run_dir / "env" / name).unlink(missing_ok=True)
    except OSError as exc:
        raise AnsibleError(f"{where}: run directory {request.run_dir}: {exc.strerror}") from exc


def _runner_kwargs(request: PlaybookRequest, ident: str, env: dict[str, str]) -> dict[str, Any]:
    flags = [("--check", request.check), ("--diff", request.diff or request.check)]
    return {
        "private_data_dir": str(request.run_dir.resolve()),
        "project_dir": str(request.project_dir.resolve()),
        "playbook": request.playbook,
        "inventory": str(request.inventory.resolve()),  # a relative one runner would rewrite
        "ident": ident,
        "envvars": env,
        "extravars": dict(request.extra_vars) or None,  # to env/extravars (0600), not argv
        "limit": request.limit,
        "tags": ",".join(request.tags) or None,
        "skip_tags": ",".join(request.skip_tags) or None,
        "forks": request.forks,
        "cmdline": " ".join(flag for flag, on in flags if on) or None,
        "quiet": True,  # raw stdout still lands in artifacts/<ident>/stdout
    }


def run_playbook(
    request: PlaybookRequest, *, on_event: EventHandler | None = None
) -> PlaybookResult:
    """Run the playbook, passing each event to on_event, and return what it did to each host.

    Raises AnsibleError only when the run cannot start; one run_dir serves one run at a time.
    """
    import ansible_runner  # heavy: imported only when a playbook really runs
    from ansible_runner.interface import init_runner

    def handle(event: Mapping[str, Any]) -> bool:
        if on_event is not None:
            on_event(event)
        return True  # runner keeps the event in artifacts

    ident = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"  # sorts by time
    artifacts_dir = request.run_dir.resolve() / "artifacts" / ident
    env = _envvars(request, artifacts_dir / TAGS_FILE)
    _preflight(request, env)
    try:
        # init_runner prepares what run() would, so the environment is cut down before runner
        # writes it to artifacts/<ident>/command or hands it to ansible-playbook
        runner = init_runner(**_runner_kwargs(request, ident, env), event_handler=handle)
        runner.config.env = allowed_environment(runner.config.env, os.environ, env)
        runner.run()
    except (ansible_runner.AnsibleRunnerException, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split())  # one line, no traceback for the user
        where = f"{request.playbook} in {request.run_dir}"
        raise AnsibleError(f"ansible-runner could not start {where}: {reason}") from exc
    return PlaybookResult(
        rc=runner.rc if isinstance(runner.rc, int) else -1,
        status=str(runner.status),
        hosts=host_stats_from_runner(runner.stats),
        tasks=task_results_from_events(runner.events, read_task_tags(artifacts_dir / TAGS_FILE)),
        artifacts_dir=artifacts_dir,
    )
