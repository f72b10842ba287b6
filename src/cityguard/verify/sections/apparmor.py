"""Whether AppArmor confines a host's processes: the kernel's AppArmor state and loaded
profiles with their modes, the processes that have a profile yet run unconfined, and the
profiles /etc/apparmor.d disables or forces into complain mode.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import split_grep


@dataclass(frozen=True)
class AppArmor:
    enabled: str  # Y, N, or absent (no AppArmor in this kernel or namespace)
    profiles: dict[str, str]  # name -> mode
    unconfined_processes: tuple[str, ...]  # processes with a profile that runs unconfined


def parse_apparmor(lines: list[str]) -> AppArmor:
    enabled, profiles, unconfined = "absent", {}, []
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "enabled":
            enabled = text.strip()
        elif tag == "profile":
            match = re.match(r"^(.*) \((\w+)\)$", text.strip())
            if match:
                profiles[match.group(1)] = match.group(2)
        elif tag == "json" and text.strip():
            status = json.loads(text)
            for process, entries in (status.get("processes") or {}).items():
                for entry in entries:
                    if entry.get("status") == "unconfined":
                        unconfined.append(f"{process} (pid {entry.get('pid')})")
    return AppArmor(enabled, profiles, tuple(unconfined))


def parse_listing(lines: list[str]) -> dict[str, list[str]]:
    """`directory name` lines -> directory -> names."""
    return split_grep(lines, separator=" ")


APPARMOR_COMMAND = (
    "e=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null); "
    'echo "enabled ${e:-absent}"; '
    "[ -r /sys/kernel/security/apparmor/profiles ] && "
    "sed 's/^/profile /' /sys/kernel/security/apparmor/profiles; "
    'if [ "$e" = Y ] && command -v aa-status >/dev/null; then '
    'echo "json $(aa-status --json 2>/dev/null)"; fi; true'
)
APPARMOR_FILES_COMMAND = (
    "for d in disable force-complain; do for f in /etc/apparmor.d/$d/*; do "
    '[ -e "$f" ] && echo "$d ${f##*/}"; done; done; true'
)

register_section("system-apparmor", APPARMOR_COMMAND, parse_apparmor)
register_section("system-apparmor-files", APPARMOR_FILES_COMMAND, parse_listing)
