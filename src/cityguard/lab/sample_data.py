"""Sample data on lab hosts: the databases and file trees a site's drill plans back up, and the
isolation of its restore targets (lab.yml's ``data`` section, docs/lab.md).

`cityguard lab data` and the demo load it after the lab is up (and after harden: a hardened
host's umask 027 must not matter, so an SQL file reaches psql on its standard input rather
than as a copied file another user may not read). Every step can run again: a database is
dropped and created afresh, the scripts write their trees anew, the isolation table is
replaced.

Isolation: a restore drill must not restore onto a host that can reach the systems it restores
(CG-DR-004). The hosts of ``isolated_groups`` get an nftables table of their own that drops
the first packet (SYN) of every TCP connection they open and every UDP datagram they send,
except on loopback: connections made to them (the control node's SSH, over which the drill
works) still flow, and so does ICMP. The rules are stateless on purpose: on a host without a
firewall yet, connection tracking would start with the table and take the open SSH session's
next packets for new ones. It is removed by ``isolate(..., on=False)``.

The building blocks (shell lines, the ruleset) are pure functions; ``load`` and ``isolate``
run them over SSH with the lab's own client configuration, through the engine's runner.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence

from cityguard.lab.command import LabError, run
from cityguard.lab.description import SampleData
from cityguard.lab.lab import Lab

ISOLATION_TABLE = "cgisolate"
LOAD_TIMEOUT_S = 900.0
SHORT_TIMEOUT_S = 120.0
#: how long a database host's PostgreSQL may take to accept connections
POSTGRES_WAIT_S = 60

Say = Callable[[str], None]


def as_root(script: str) -> str:
    """A shell script run as root on the host (sudo never prompts; ``sh -e`` stops at a failure)."""
    return f"sudo -n sh -ec {shlex.quote(script)}"


def load_database_script(database: str) -> str:
    """Wait for PostgreSQL, make ``database`` afresh and load the SQL read from standard input.

    Only psql reads standard input; every command before it reads /dev/null.
    """
    name = shlex.quote(database)
    return "\n".join(
        [
            f"for i in $(seq {POSTGRES_WAIT_S}); do",
            "  pg_isready -q </dev/null && break; sleep 1",
            "done",
            "pg_isready -q </dev/null || { echo 'PostgreSQL does not accept connections' >&2;"
            " exit 1; }",
            f"runuser -u postgres -- dropdb --if-exists {name} </dev/null",
            f"runuser -u postgres -- createdb {name} </dev/null",
            f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d {name}",
        ]
    )


def isolation_ruleset() -> str:
    """The table that cuts a host off: it opens no connection and sends no datagram, except on
    loopback; TCP packets of connections made to it (SYN+ACK onwards) still go out."""
    return (
        f"table inet {ISOLATION_TABLE} {{\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        '    oifname "lo" accept\n'
        "    tcp flags & (syn | ack) == syn drop\n"
        "    meta l4proto udp drop\n"
        "  }\n"
        "}\n"
    )


def isolation_script(on: bool) -> str:
    """Remove the table if it is there; with ``on``, load it again from standard input."""
    remove = f"nft delete table inet {ISOLATION_TABLE} 2>/dev/null </dev/null || true"
    return f"{remove}\nnft -f -" if on else remove


def ssh_argv(lab: Lab, host: str, command: str) -> list[str]:
    """A fresh SSH login to a lab host (no shared control socket), never prompting."""
    return [
        "ssh",
        "-F",
        str(lab.ssh_config),
        "-o",
        "ControlPath=none",
        "-o",
        "BatchMode=yes",
        host,
        command,
    ]


def check_hosts(lab: Lab, data: SampleData, isolated: Iterable[str]) -> None:
    """Every host the data names must be a host of this lab (it may have been started with
    --limit); raise LabError naming those that are not, before anything is done."""
    known = {h.name for h in lab.hosts}
    missing = [h for h in (*data.hosts(), *isolated) if h not in known]
    if missing:
        raise LabError(
            f"lab {lab.lab_id} has no host {', '.join(dict.fromkeys(missing))} "
            f"(hosts: {', '.join(sorted(known))}): start it with 'cityguard lab up'"
        )


def load(lab: Lab, data: SampleData, isolated: Sequence[str], say: Say) -> None:
    """Load the databases, run the scripts, then isolate the ``isolated`` hosts."""
    check_hosts(lab, data, isolated)
    for database in data.databases:
        run(
            ssh_argv(lab, database.host, as_root(load_database_script(database.database))),
            what=f"loading {database.sql.name} into {database.database} on {database.host}",
            input_text=database.sql.read_text(encoding="utf-8"),
            timeout=LOAD_TIMEOUT_S,
        )
        say(f"{database.host}: database {database.database} loaded from {database.sql.name}")
    for script in data.scripts:
        run(
            ssh_argv(lab, script.host, as_root(script.script.read_text(encoding="utf-8"))),
            what=f"running {script.script.name} on {script.host}",
            timeout=LOAD_TIMEOUT_S,
        )
        say(f"{script.host}: {script.script.name} done")
    if isolated:
        isolate(lab, isolated, on=True)
        say(
            f"{', '.join(isolated)}: isolated (nftables table inet {ISOLATION_TABLE}: "
            "opens no connection except on loopback)"
        )


def isolate(lab: Lab, hosts: Iterable[str], *, on: bool) -> None:
    """Cut ``hosts`` off from every other host (``on``), or lift that again."""
    for host in hosts:
        run(
            ssh_argv(lab, host, as_root(isolation_script(on))),
            what=f"{'isolating' if on else 'lifting the isolation of'} {host}",
            input_text=isolation_ruleset() if on else None,
            timeout=SHORT_TIMEOUT_S,
        )
