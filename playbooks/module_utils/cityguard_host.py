"""Facts about the managed host that cityguard's own modules share.

Kept in one place so every module agrees on what counts as a container, where kernel-global
state (modules, kernel.* sysctls, mounts the host does not own) must be left alone.
"""

from __future__ import annotations

import os


def in_container() -> bool:
    """systemd writes /run/systemd/container in every container it runs in; a container
    started without systemd still names itself in PID 1's environment."""
    if os.path.exists("/run/systemd/container"):
        return True
    try:
        with open("/proc/1/environ", "rb") as stream:
            return any(v.startswith(b"container=") for v in stream.read().split(b"\0"))
    except OSError:
        return False
