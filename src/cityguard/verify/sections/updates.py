"""Whether a host installs security updates by itself: APT's periodic settings and
unattended-upgrades' origins as `apt-config` resolves them, the suites APT's sources name
(one-line and deb822 formats), and how long ago the periodic jobs last succeeded (their stamp
files against the host's clock).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cityguard.verify.facts import register_section


@dataclass(frozen=True)
class AptState:
    config: dict[str, list[str]]  # apt-config key -> values (lists have one value per item)
    stamps: dict[str, int]  # path -> modification time (epoch seconds)
    now: int
    suites: list[str]  # every suite an enabled source names, e.g. bookworm-security

    def value(self, key: str) -> str | None:
        values = self.config.get(key)
        return values[-1] if values else None

    def age_days(self, path: str) -> float | None:
        if path not in self.stamps:
            return None
        return round((self.now - self.stamps[path]) / 86400, 1)


_APT_LINE = re.compile(r'^(\S+?)(::)?\s+"(.*)";$')


def parse_apt(lines: list[str]) -> AptState:
    config: dict[str, list[str]] = {}
    stamps, now, suites = {}, 0, []
    for line in lines:
        tag, _, text = line.partition(" ")
        if tag == "C":
            match = _APT_LINE.match(text.strip())
            if match and match.group(3):
                config.setdefault(match.group(1), []).append(match.group(3))
        elif tag == "S":
            seconds, _, path = text.partition(" ")
            stamps[path.strip()] = int(seconds)
        elif tag == "N":
            now = int(text)
        elif tag == "R":
            suites += text.split()
    return AptState(config, stamps, now, suites)


APT_COMMAND = (
    "apt-config dump 2>/dev/null | grep -E "
    "'^(APT::Periodic::|Unattended-Upgrade::(Origins-Pattern|Allowed-Origins)::)' "
    "| sed 's/^/C /'; for f in /var/lib/apt/periodic/update-success-stamp "
    '/var/lib/apt/periodic/unattended-upgrades-stamp; do [ -e "$f" ] && '
    'echo "S $(stat -c %Y "$f") $f"; done; echo "N $(date +%s)"; '
    # one-line sources: the suite is the field after the URI (options in [] dropped first)
    "grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
    "| sed -E 's/\\[[^]]*\\]//' | awk '{print \"R \" $3}'; "
    # deb822 sources: every word of a Suites: field
    "grep -hsiE '^Suites:' /etc/apt/sources.list.d/*.sources | sed -E 's/^[^:]*:/R /'"
)

register_section("system-apt", APT_COMMAND, parse_apt)
