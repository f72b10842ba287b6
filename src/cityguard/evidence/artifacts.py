"""The files a run leaves in its run directory, and how the evidence store accounts for them.

Every command that records evidence gets a fresh run directory under the site's state directory
(``<state dir>/runs/<UTC time>-<command>/``, the run's ``artifacts_dir``). When the run closes,
also after a crash or Ctrl-C, the recorder lists every regular file in it with its path relative
to the run directory, SHA-256, size and media type. The files stay where they are; the store
keeps their fingerprints, so an auditor can later show that a kept file is the one the run wrote.

What a run directory holds:

``inventory.yml``
    The inventory the run used (hosts, groups, connection details and any per-run host
    variables such as the controls waived per host). Every command that reaches hosts writes it.

``artifacts/<ident>/`` (runs that drive Ansible: ``harden``, ``harden --check``)
    ansible-runner's record of one playbook run; ``<ident>`` is the UTC start time and a short
    random suffix, so several playbook runs of one command sort in the order they ran.

    - ``job_events/<n>-<uuid>.json``: every event Ansible emitted, one JSON file each, in order
      (``n``); task results, including the diffs of changed tasks when diff or check mode was on;
    - ``stdout`` and ``stderr``: what ansible-playbook printed;
    - ``rc``: its exit code, ``status``: runner's verdict (successful, failed, timeout, canceled);
    - ``command``: the command line, working directory and environment of the run, with every
      variable whose name says it is a secret redacted (cityguard.core.secrets);
    - ``fact_cache/<host>``: facts Ansible cached per host (JSON), when facts were gathered;
    - ``cityguard_task_tags.jsonl``: one line per task started, ``[task uuid, [tags]]``, written
      by cityguard's callback because runner's events carry no tags; it maps changes to controls.

``env/`` (runs that drive Ansible)
    ansible-runner's inputs: ``extravars`` (the selected controls and their parameters, JSON,
    mode 0600), ``envvars`` (JSON) and ``cmdline`` (extra ansible-playbook options, e.g.
    ``--check --diff``). cityguard removes them before every run so no stale input is reused.

``check`` runs
    Only ``inventory.yml``: each host's check results go straight into the store as check and
    control results, and the per-host scratch files (results, parameters) are temporary.

Areas that come later (drills, IPv6 rollout, eIDAS broker) put their own files here, and they
are accounted for the same way without any change to this module.

Media types come from a fixed table, not from the machine's /etc/mime.types, so the same file
gets the same type wherever cityguard runs. Symbolic links are not followed: a link could point
outside the run directory, and the run did not write what it points to.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

#: Python's built-in table only (a fresh MimeTypes does not read the system's files).
_BUILTIN_TYPES = mimetypes.MimeTypes()
#: Suffixes the built-in table does not know or names differently than the run's files need.
SUFFIX_TYPES = {
    ".yml": "application/yaml",
    ".yaml": "application/yaml",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
}
#: ansible-runner's files without a suffix, by their name in artifacts/<ident>/.
RUNNER_ARTIFACT_TYPES = {
    "stdout": "text/plain",
    "stderr": "text/plain",
    "rc": "text/plain",
    "status": "text/plain",
    "command": "application/json",
}
#: ansible-runner's input files in env/.
RUNNER_ENV_TYPES = {
    "extravars": "application/json",
    "envvars": "application/json",
    "cmdline": "text/plain",
}
UNKNOWN_TYPE = "application/octet-stream"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """One file of a run directory: where (relative, "/"-separated), its SHA-256, size, type."""

    path: str
    sha256: str
    size: int
    media_type: str

    def __post_init__(self) -> None:
        pure = PurePosixPath(self.path)
        if not self.path or pure.is_absolute() or ".." in pure.parts:
            raise ValueError(f"artifact path must be relative to the run directory: {self.path!r}")
        if len(self.sha256) != 64 or not all(c in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"artifact {self.path}: not a lowercase SHA-256 hex digest")
        if self.size < 0:
            raise ValueError(f"artifact {self.path}: negative size {self.size}")


def media_type(relative: str) -> str:
    """The media type of a run-directory file, by its path relative to the run directory."""
    parts = PurePosixPath(relative).parts
    name = parts[-1]
    if len(parts) == 3 and parts[0] == "artifacts" and name in RUNNER_ARTIFACT_TYPES:
        return RUNNER_ARTIFACT_TYPES[name]
    if len(parts) == 2 and parts[0] == "env" and name in RUNNER_ENV_TYPES:
        return RUNNER_ENV_TYPES[name]
    if len(parts) == 4 and parts[0] == "artifacts" and parts[2] == "fact_cache":
        return "application/json"  # Ansible's jsonfile cache: one JSON document per host
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in SUFFIX_TYPES:
        return SUFFIX_TYPES[suffix]
    guessed, encoding = _BUILTIN_TYPES.guess_type(name, strict=False)
    if encoding is not None:  # e.g. .gz: the bytes are the compressed file, not its content
        return {"gzip": "application/gzip", "bzip2": "application/x-bzip2"}.get(
            encoding, UNKNOWN_TYPE
        )
    return guessed or UNKNOWN_TYPE


def describe(run_dir: Path, path: Path) -> Artifact:
    """The artifact record of one file in run_dir; OSError if it cannot be read."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    relative = path.relative_to(run_dir).as_posix()
    return Artifact(relative, digest.hexdigest(), size, media_type(relative))


def collect_artifacts(run_dir: Path) -> list[Artifact]:
    """Every regular file under run_dir, sorted by path; none if the directory is missing.

    A file that cannot be read is left out with a warning rather than stopping the run's
    close: the run's other evidence matters more than one unreadable file.
    """
    if not run_dir.is_dir():
        return []

    def unreadable(error: OSError) -> None:
        logger.warning("run directory %s: cannot list %s: %s", run_dir, error.filename, error)

    found: list[Artifact] = []
    for directory, subdirs, files in os.walk(run_dir, onerror=unreadable):
        subdirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            try:
                found.append(describe(run_dir, path))
            except OSError as error:
                logger.warning("run directory %s: cannot read %s: %s", run_dir, path, error)
    return sorted(found, key=lambda artifact: artifact.path)
