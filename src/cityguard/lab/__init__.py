"""Lab hosts on this machine: Debian 12 systems booted with systemd-nspawn on a private bridge
(or, as a fallback, without systemd in plain namespaces: plain.py).

The tests and the demo run against these instead of mocks, so every feature is proven on real
sshd, systemd, sysctl and Ansible. docs/lab.md explains why it is built this way.

The names below are loaded on first use, so registering the `lab` commands costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LabError": "cityguard.lab.command",
    "HostSpec": "cityguard.lab.lab",
    "Lab": "cityguard.lab.lab",
    "down": "cityguard.lab.lab",
    "find_leftovers": "cityguard.lab.lab",
    "status": "cityguard.lab.lab",
    "up": "cityguard.lab.lab",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
