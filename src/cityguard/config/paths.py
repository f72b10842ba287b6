"""Where cityguard finds its content and keeps its state and cache.

Content (policies, playbooks, checks) ships with the project, not in the site directory, so
every city is audited against the same reviewed rules. State (evidence, run history) is per
site and must survive between runs; the cache can be deleted at any time. Environment
variables override the defaults so CI, containers and tests never touch a real home.
"""

from __future__ import annotations

import os
from pathlib import Path

from cityguard.config.errors import ConfigError, ConfigProblem

CONTENT_ENV = "CITYGUARD_CONTENT"
STATE_ENV = "CITYGUARD_STATE"
CACHE_ENV = "CITYGUARD_CACHE"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def content_root() -> Path:
    """The project directory holding ``policies/`` and ``playbooks/``.

    ``$CITYGUARD_CONTENT`` wins when set (an installed package has no source tree around it);
    otherwise we walk up from this file, which finds the checkout in a development install.
    """
    configured = _env_path(CONTENT_ENV)
    if configured is not None:
        return configured.resolve()
    for candidate in Path(__file__).resolve().parents:
        if (candidate / "policies").is_dir() and (candidate / "playbooks").is_dir():
            return candidate
    problem = ConfigProblem(
        "",
        None,
        CONTENT_ENV,
        "cannot find the cityguard content directory (with policies/ and playbooks/); "
        f"set {CONTENT_ENV}",
    )
    raise ConfigError([problem])


def state_dir_for(site_name: str) -> Path:
    """Per-site state: ``$CITYGUARD_STATE`` or ``~/.local/state/cityguard/<site>``."""
    configured = _env_path(STATE_ENV)
    if configured is not None:
        return configured
    return Path.home() / ".local" / "state" / "cityguard" / site_name


def state_dir_problems(path: Path) -> list[ConfigProblem]:
    """The state directory must be a directory (or not exist yet, then it is created 0700).

    ``CITYGUARD_STATE`` pointing at a file would otherwise fail deep inside the evidence store.
    """
    key = STATE_ENV if _env_path(STATE_ENV) is not None else "state directory"
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            if candidate.is_dir():
                return []
            what = "is" if candidate == path else f"is inside {candidate}, which is"
            return [ConfigProblem("", None, key, f"{path} {what} not a directory")]
    return []


def ensure_private_dir(path: Path) -> Path:
    """Create the state directory 0700, or make an existing one of ours 0700.

    It holds the evidence (every weakness of every server) and run artifacts: nobody else's.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.geteuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def cache_dir() -> Path:
    """Disposable downloads and caches: ``$CITYGUARD_CACHE`` or ``~/.cache/cityguard``."""
    configured = _env_path(CACHE_ENV)
    if configured is not None:
        return configured
    return Path.home() / ".cache" / "cityguard"
