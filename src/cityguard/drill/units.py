"""systemd units that run backups, drills and the off-site bucket job of S3 plans (``backup
offsite --setup``), from the plans' schedules: on the control node, or (a backup with
``backup_runs_on: source-host``) on the source host.

Pure: unit file text only. ``cityguard drill schedule`` writes them (``--unit-dir``, default
/etc/systemd/system) and ``--list`` shows the next runs from ``systemd-analyze calendar``. The
repository password reaches the service through ``EnvironmentFile`` (root only, mode 0600) or
a systemd credential, as the plan references it; never in the unit itself.
"""

from __future__ import annotations

import shlex
from pathlib import Path

ENV_FILE = "/etc/cityguard/cityguard.env"


#: How a unit's description names what it runs, where not by its kind.
WHAT = {"offsite": "off-site bucket job"}


def unit_name(kind: str, system: str) -> str:
    return f"cityguard-{kind}-{system}"


def command(kind: str, system: str, cityguard: str, site: Path) -> list[str]:
    """The argv a service of ``kind`` (backup, drill, offsite) runs for ``system``."""
    words = {
        "backup": ["backup", "run", system],
        "drill": ["drill", "run", system],
        "offsite": ["backup", "offsite", system, "--setup"],
    }[kind]
    return [cityguard, *words, "--site", str(site), "-q"]


def service(kind: str, system: str, cityguard: str, site: Path) -> str:
    return (
        "[Unit]\n"
        f"Description=cityguard {WHAT.get(kind, kind)} of {system}\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"EnvironmentFile=-{ENV_FILE}\n"
        f"ExecStart={shlex.join(command(kind, system, cityguard, site))}\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )


def agent_service(system: str, python: str, agent: str, job: str, credentials: str) -> str:
    """The service a source host's timer starts (``backup_runs_on: source-host``): the agent
    with the system's job and root-only credentials file; a failure shows in its journal and
    as a failed unit."""
    return (
        "[Unit]\n"
        f"Description=cityguard backup of {system} (pushed from this host)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={shlex.join([python, agent, job, credentials])}\n"
        "PrivateTmp=true\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )


def timer(kind: str, system: str, on_calendar: str) -> str:
    return (
        "[Unit]\n"
        f"Description=cityguard {WHAT.get(kind, kind)} of {system} ({on_calendar})\n\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        "Persistent=true\n"
        "RandomizedDelaySec=5m\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
