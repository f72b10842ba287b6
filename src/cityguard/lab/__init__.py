"""Lab hosts on this machine: Debian 12 systems booted with systemd-nspawn on a private bridge
(or, as a fallback, without systemd in plain namespaces: plain.py).

The tests and the demo run against these instead of mocks, so every feature is proven on real
sshd, systemd, sysctl and Ansible. See LAB.md for why it is built this way.
"""

from cityguard.lab.command import LabError
from cityguard.lab.lab import HostSpec, Lab, down, find_leftovers, status, up

__all__ = ["HostSpec", "Lab", "LabError", "down", "find_leftovers", "status", "up"]
