"""Where a host takes its time from: chrony's sources and the user chronyd runs as, read from
its configuration files (the daemon's own state needs a clock a lab container cannot set).

Which time daemons are installed and running comes from the `services` sections.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityguard.verify.facts import register_section
from cityguard.verify.sections._common import grep_files, split_grep, uncommented


@dataclass(frozen=True)
class ChronyConfig:
    sources: tuple[tuple[str, str, str], ...]  # (directive, address, file)
    users: tuple[tuple[str, str], ...]  # (user directive value, file)
    daemon_opts: str | None


CHRONY_SOURCES = ("server", "pool", "peer", "refclock")


def parse_chrony(lines: list[str]) -> ChronyConfig:
    sources, users, daemon_opts = [], [], None
    for path, texts in split_grep(lines).items():
        for text in texts:
            active = uncommented(text)
            if path.startswith("/etc/default/"):
                key, sep, value = active.partition("=")
                if sep and key.strip() == "DAEMON_OPTS":
                    daemon_opts = value.strip().strip("\"'")
                continue
            words = active.split()
            if len(words) >= 2 and words[0] in CHRONY_SOURCES:
                sources.append((words[0], words[1], path))
            elif len(words) >= 2 and words[0] == "user":
                users.append((words[1], path))
    return ChronyConfig(tuple(sources), tuple(users), daemon_opts)


CHRONY_COMMAND = grep_files(
    "/etc/chrony/chrony.conf",
    "/etc/chrony/conf.d/*.conf",
    "/etc/chrony/sources.d/*.sources",
    "/etc/default/chrony",
)

register_section("system-chrony", CHRONY_COMMAND, parse_chrony)
