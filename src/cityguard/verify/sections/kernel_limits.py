"""Resource limits and core dumps, as two fact sections gathered in the same SSH round trip as
the core ones, with the effective-limit rule the core-dump checks share:

- ``kernel-limits``: pam_limits' files, in the order pam_limits reads them;
- ``kernel-coredump``: systemd-coredump's configuration with its drop-ins.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import systemd_settings

# ------------------------------------------------------------------------- pam_limits

# pam_limits reads limits.conf first, then limits.d/*.conf in name order (the shell glob order)
LIMITS_COMMAND = (
    "grep -H '' /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null || true"
)


@dataclass(frozen=True)
class LimitEntry:
    file: str
    domain: str
    kind: str  # soft, hard or - (both)
    item: str
    value: str


def parse_limits(lines: list[str]) -> list[LimitEntry]:
    entries = []
    for line in lines:
        path, sep, content = line.partition(":")
        words = content.split("#", 1)[0].split()
        if sep and len(words) == 4:
            entries.append(LimitEntry(path, *words))
    return entries


def effective_limit(
    entries: list[LimitEntry], domain: str, item: str, kind: str
) -> LimitEntry | None:
    """The entry pam_limits applies for `domain`: of equally specific entries, the last read."""
    matching = [
        e for e in entries if e.domain == domain and e.item == item and e.kind in (kind, "-")
    ]
    return matching[-1] if matching else None


# ------------------------------------------------------------------------- systemd-coredump

COREDUMP_COMMAND = (
    "command -v systemd-analyze >/dev/null 2>&1 || "
    "{ echo @@error; echo systemd-analyze not found; exit 0; }; "
    "systemd-analyze cat-config systemd/coredump.conf 2>&1"
)


def parse_coredump(lines: list[str]) -> dict[str, tuple[str, str]]:
    """Key -> (value, file) of [Coredump], from `systemd-analyze cat-config` (last one wins)."""
    return systemd_settings(lines, "Coredump")


register_section("kernel-limits", LIMITS_COMMAND, parse_limits)
register_section("kernel-coredump", COREDUMP_COMMAND, parse_coredump)
