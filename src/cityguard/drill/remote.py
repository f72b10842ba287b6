"""Commands run on hosts over SSH, as argv lists, and parsers of what they print.

Pure: nothing is run here. A host is reached as every other command reaches it: its inventory
variables (``ansible_host``, ``ansible_user``, ``ansible_port``, ``ansible_ssh_common_args``,
which in the lab point at the lab's ssh_config). The remote command is one string for the
remote shell, built with ``shlex.quote`` from validated plan values only.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

# the host-side backup agent reads what a backup records with the same parsers
from cityguard.hostside.cityguard_backup_agent import parse_row_counts as parse_row_counts
from cityguard.hostside.cityguard_backup_agent import parse_sha256sum as parse_sha256sum

PG_USER = "postgres"


def _target(hostvars: Mapping[str, Any], host: str) -> tuple[list[str], str]:
    options = shlex.split(str(hostvars.get("ansible_ssh_common_args") or ""))
    if hostvars.get("ansible_port"):
        options += ["-p", str(hostvars["ansible_port"])]
    key = hostvars.get("ansible_ssh_private_key_file")
    if key:
        options += ["-i", str(key)]
    address = str(hostvars.get("ansible_host") or host)
    user = hostvars.get("ansible_user")
    return options, f"{user}@{address}" if user else address


def ssh_argv(hostvars: Mapping[str, Any], host: str, command: str) -> tuple[str, ...]:
    """``ssh ... host command``: never asks for a password or a host key."""
    options, target = _target(hostvars, host)
    return ("ssh", *options, "-o", "BatchMode=yes", target, command)


def as_root(script: str) -> str:
    """A shell script run as root on the host (``sudo -n``: never prompts)."""
    return f"sudo -n sh -c {shlex.quote(script)}"


def as_postgres(argv: Sequence[str]) -> str:
    return shlex.join(["sudo", "-n", "-u", PG_USER, *argv])


def pg_dump(database: str, port: int) -> str:
    return as_postgres(["pg_dump", "-Fc", "-p", str(port), "--", database])


def pg_dumpall_globals(port: int) -> str:
    return as_postgres(["pg_dumpall", "--globals-only", "-p", str(port)])


def psql(database: str, port: int, query: str) -> str:
    """One query, unaligned output, fields split by '|', stop at the first error."""
    return as_postgres(
        ["psql", "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-p", str(port),
         "-d", database, "-c", query]
    )  # fmt: skip


def row_counts_query(tables: Sequence[str]) -> str:
    parts = [f"SELECT '{t}', count(*) FROM {t}" for t in tables]
    return " UNION ALL ".join(parts)


def freshness_query(table: str, column: str) -> str:
    stamp = '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''
    return f"SELECT to_char(max({column}) AT TIME ZONE 'UTC', {stamp}) FROM {table}"


def parse_rows(output: str) -> list[list[str]]:
    return [line.split("|") for line in output.strip().splitlines() if line.strip()]


def tar_create(paths: Sequence[str]) -> str:
    """A tar stream of ``paths`` (absolute) on standard output, with numeric owners."""
    relative = [p.lstrip("/") or "." for p in paths]
    return shlex.join(
        ["sudo", "-n", "tar", "--numeric-owner", "-cf", "-", "-C", "/", "--", *relative]
    )


def sample_hashes(paths: Sequence[str], count: int) -> str:
    """SHA-256 of ``count`` random regular files under ``paths``."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    script = f"find {quoted} -type f -print0 | shuf -z -n {int(count)} | xargs -0 -r sha256sum --"
    return as_root(script)


def hashes_under(directory: str, paths: Sequence[str]) -> str:
    """SHA-256 of ``paths`` (absolute, as on the source) restored under ``directory``."""
    relative = [f"./{p.lstrip('/')}" for p in paths]
    script = (
        f"cd {shlex.quote(directory)} && sha256sum -- {' '.join(shlex.quote(p) for p in relative)}"
    )
    return as_root(script + " || true")


def free_kib(path: str) -> str:
    return shlex.join(["df", "-Pk", path])


def parse_df(output: str) -> int:
    """Available KiB from ``df -Pk`` (second line, fourth column)."""
    lines = output.strip().splitlines()
    if len(lines) < 2:
        raise ValueError("df printed no filesystem line")
    return int(lines[-1].split()[3])


def probe_ports(targets: Sequence[tuple[str, int]], timeout_s: int = 2) -> str:
    """Try each (host, port) at once; prints ``open host port`` for each that accepted."""
    jobs = [
        f"(timeout {timeout_s} bash -c {shlex.quote(f'</dev/tcp/{h}/{p}')} 2>/dev/null "
        f"&& echo open {shlex.quote(h)} {p}) &"
        for h, p in targets
    ]
    return "bash -c " + shlex.quote(" ".join(jobs) + " wait")


def parse_open(output: str) -> list[tuple[str, int]]:
    found = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "open":
            found.append((parts[1], int(parts[2])))
    return sorted(found)


def http_status(port: int, path: str) -> str:
    code = (
        "import sys,urllib.request,urllib.error\n"
        f"url='http://127.0.0.1:{int(port)}'+sys.argv[1]\n"
        "try:\n    print(urllib.request.urlopen(url, timeout=5).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
        "except OSError as e:\n    print('error', e)\n"
    )
    return shlex.join(["python3", "-c", code, path])


# The host's first cluster (pg_lsclusters: version, name, port, status, owner, data directory,
# log file), started with its own configuration by pg_ctl, which returns as soon as the server
# accepts connections. Debian's pg_ctlcluster starts it the same way and then sleeps in half
# seconds until it has probed the socket itself: measured on a lab host, 2.2 to 2.4 s against
# 0.14 s, and the drill's RTO waits for it. The server's output goes to the cluster's log file
# (or nowhere when the configuration names its own), never to this SSH session, which would then
# stay open as long as the server runs.
START_POSTGRES = """set -e
install -d -m 2775 -o postgres -g postgres /run/postgresql
set -- $(pg_lsclusters -h | head -n1)
[ -n "$1" ] || { echo "no PostgreSQL cluster on this host" >&2; exit 1; }
[ "$4" != online ] || exit 0
case "$7" in /*) log="$7" ;; *) log=/dev/null ;; esac
runuser -u "$5" -- "/usr/lib/postgresql/$1/bin/pg_ctl" start -w -s -D "$6" -l "$log" \\
  -o "-c config_file=/etc/postgresql/$1/$2/postgresql.conf" </dev/null
"""

STOP_POSTGRES = """set -- $(pg_lsclusters -h | head -n1)
[ -z "$1" ] || [ "$4" != online ] || pg_ctlcluster "$1" "$2" stop -m fast
"""


def restore_globals(port: int) -> str:
    """Create the backup's roles from the SQL on standard input. Roles that already exist
    (postgres) make psql complain; the rest is created, so its complaints are not a failure."""
    return as_root(f"runuser -u postgres -- psql -X -q -p {port} >/dev/null 2>&1 || true")


def restore_database(database: str, port: int) -> str:
    """Recreate ``database`` from the custom-format dump on standard input.

    Root starts the programs and pg_restore reads the stream: nothing is written to the host's
    disk on the way, so no file is left that another user could read."""
    db = shlex.quote(database)
    steps = [
        "set -e",
        f"runuser -u postgres -- dropdb --if-exists -p {port} {db} </dev/null",
        f"runuser -u postgres -- createdb -p {port} {db} </dev/null",
        f"runuser -u postgres -- pg_restore --exit-on-error -p {port} -d {db}",
    ]
    return as_root("\n".join(steps))


def extract_tar(directory: str) -> str:
    """Unpack the tar stream on standard input into ``directory`` (made afresh)."""
    d = shlex.quote(directory)
    return as_root(f"set -e\nrm -rf {d}\nmkdir -p {d}\ntar --numeric-owner -xf - -C {d}")


def teardown(database_names: Sequence[str], port: int, paths: Sequence[str]) -> str:
    steps = [
        f"runuser -u postgres -- dropdb --if-exists -p {port} {shlex.quote(db)} || true"
        for db in database_names
    ]
    steps.append(STOP_POSTGRES)
    if paths:
        steps.append("rm -rf -- " + " ".join(shlex.quote(p) for p in paths))
    return as_root("\n".join(steps))
