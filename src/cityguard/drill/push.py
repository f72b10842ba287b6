"""Backups that a source host runs itself (a plan's ``backup_runs_on: source-host``), as data.

Pure: what ``cityguard backup deploy`` puts on the host. The job file holds every command the
host-side agent (``cityguard.hostside.cityguard_backup_agent``) runs, built with the same argv
builders as a backup pulled by the control node (``restic.py``, ``remote.py``), so both make
the same snapshots, tags and manifest and a drill cannot tell them apart. The agent only
puts the backup set's id in place of ``SET_PLACEHOLDER``, runs the commands and assembles the
manifest. Secrets are not in the job: they go to a separate root-only file (``credentials``),
written over SSH standard input, never through Ansible's extra vars (which runner keeps on disk).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from cityguard.drill import manifest as mf
from cityguard.drill import remote, restic
from cityguard.drill.plan import Plan, PostgresSource

LIB_DIR = "/usr/local/lib/cityguard"
RESTIC = f"{LIB_DIR}/restic"
AGENT = f"{LIB_DIR}/cityguard_backup_agent.py"
CONF_DIR = "/etc/cityguard/backup"
CACHE_DIR = "/var/cache/cityguard/restic"
#: Replaced by the agent with the set id of each backup (restic tags hold no comma).
SET_PLACEHOLDER = "@SET@"
JOB_FORMAT = 1


def job_path(system: str) -> str:
    return f"{CONF_DIR}/{system}.json"


def credentials_path(system: str) -> str:
    return f"{CONF_DIR}/{system}.credentials.json"


def _local(command: str) -> tuple[str, ...]:
    """A command the remote helpers build for SSH, run by the host's own shell instead."""
    return ("sh", "-c", command)


def job(plan: Plan) -> dict[str, Any]:
    """What the agent on the plan's source host runs for one backup set."""
    system = plan.system
    base = restic.Repo(plan.repository_location, RESTIC, CACHE_DIR).base()

    def tags(part: str) -> tuple[str, ...]:
        return restic.snapshot_tags(system, SET_PLACEHOLDER, part)

    sources: list[dict[str, Any]] = []
    for source in plan.spec.sources:
        entry: dict[str, Any] = {"name": source.name, "kind": source.kind, "host": source.host}
        if isinstance(source, PostgresSource):
            entry["path"] = mf.dump_path(system, source.name)
            if source.tables:
                query = remote.row_counts_query(source.tables)
                entry["counts"] = remote.psql(source.database, source.port, query)
            if source.freshness is not None:
                query = remote.freshness_query(source.freshness.table, source.freshness.column)
                entry["newest"] = remote.psql(source.database, source.port, query)
            entry["globals_path"] = mf.globals_path(system, source.name)
            entry["globals"] = [
                *base,
                *restic.backup_from_command_args(
                    entry["globals_path"],
                    _local(remote.pg_dumpall_globals(source.port)),
                    tags=tags(f"{source.name}-globals"),
                    host=source.host,
                ),
            ]
            command = remote.pg_dump(source.database, source.port)
        else:
            entry["path"] = mf.tar_path(system, source.name)
            if source.sample:
                entry["hashes"] = remote.sample_hashes(source.paths, source.sample)
            command = remote.tar_create(source.paths)
        entry["backup"] = [
            *base,
            *restic.backup_from_command_args(
                entry["path"], _local(command), tags=tags(source.name), host=source.host
            ),
        ]
        sources.append(entry)
    return {
        "format": JOB_FORMAT,
        "system": system,
        "timeout_s": plan.spec.backup_timeout_s,
        "unlock": [*base, *restic.unlock_args()],
        "sources": sources,
        "manifest": [
            *base,
            *restic.backup_stdin_args(
                mf.manifest_path(system), tags=tags(restic.MANIFEST_PART), host=system
            ),
        ],
        "forget": [*base, *restic.forget_args(system, plan.spec.retention.keep(), prune=True)],
    }


def credentials(plan: Plan) -> str:
    """The repository password and S3 keys, as the agent reads them (revealed: write only to
    the host's root-only file, over standard input)."""
    env = {"RESTIC_PASSWORD": plan.password.reveal()}
    if plan.s3_access_key is not None and plan.s3_secret_key is not None:
        env["AWS_ACCESS_KEY_ID"] = plan.s3_access_key.reveal()
        env["AWS_SECRET_ACCESS_KEY"] = plan.s3_secret_key.reveal()
    return json.dumps(env, sort_keys=True) + "\n"


def write_credentials(system: str, *, check: bool) -> str:
    """Root shell script: the credentials on standard input become the system's file (0600,
    root's) unless it already holds them; prints ``changed`` or ``unchanged`` (``--check``:
    compares only). No hash or content of the file leaves the host."""
    final = shlex.quote(credentials_path(system))
    directory = shlex.quote(CONF_DIR)
    if check:
        return remote.as_root(
            f"if [ -f {final} ] && cmp -s - {final}; then echo unchanged; else echo changed; fi"
        )
    return remote.as_root(
        "set -e; umask 077\n"
        f"install -d -m 0700 -o root -g root {directory}\n"
        f"tmp=$(mktemp {directory}/.incoming.XXXXXX)\n"
        'cat > "$tmp"\n'
        f'if [ -f {final} ] && cmp -s "$tmp" {final}; then rm -f "$tmp"; echo unchanged\n'
        f'else chown root:root "$tmp"; chmod 0600 "$tmp"; mv -f "$tmp" {final}; echo changed; fi'
    )
