"""Who may read and write what on a host's filesystems: one scan of every local filesystem for
world-writable and ownerless paths, and the owner, group and mode of the files the permission
checks list by directory (sshd's drop-ins, the log files).

Single files named by a control come from the core `stat` section instead (`watch_paths`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cityguard.verify.facts import register_section

SCAN_LIMIT = 200  # paths kept per kind; the count is always complete


@dataclass(frozen=True)
class Found:
    """Paths of one kind the scan found: at most SCAN_LIMIT listed, `count` always complete."""

    count: int = 0
    paths: tuple[str, ...] = ()

    def excluding(self, prefixes: Iterable[str]) -> Found:
        """Without paths under the excluded prefixes; unlisted ones cannot be told apart, so the
        count drops only by the listed paths that were excluded."""
        roots = [p.rstrip("/") for p in prefixes if p]
        kept = tuple(
            p for p in self.paths if not any(p == r or p.startswith(r + "/") for r in roots)
        )
        return Found(self.count - (len(self.paths) - len(kept)), kept)

    def describe(self, shown: int = 20) -> str:
        if self.count == 0:
            return "none"
        listed = ", ".join(self.paths[:shown])
        more = self.count - min(len(self.paths), shown)
        return f"{self.count}: {listed}" + (f" and {more} more" if more > 0 else "")


SCAN_KINDS = ("ww-file", "ww-dir", "unowned", "ungrouped")


def parse_scan(lines: list[str]) -> dict[str, Found]:
    paths: dict[str, list[str]] = {kind: [] for kind in SCAN_KINDS}
    counts: dict[str, int] = dict.fromkeys(SCAN_KINDS, 0)
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] == "count" and parts[1] in counts:
            counts[parts[1]] = int(parts[2])
        elif len(parts) == 2 and parts[0] in paths:
            paths[parts[0]].append(parts[1])
    return {
        kind: Found(max(counts[kind], len(paths[kind])), tuple(sorted(set(paths[kind]))))
        for kind in SCAN_KINDS
    }


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int
    owner: str
    group: str

    def describe(self) -> str:
        return f"{self.path} {self.mode:04o} {self.owner}:{self.group}"


def parse_entries(lines: list[str]) -> list[Entry]:
    """`mode<TAB>owner<TAB>group<TAB>path` lines (find -printf '%m\\t%u\\t%g\\t%p\\n')."""
    result = []
    for line in lines:
        parts = line.split("\t", 3)
        if len(parts) == 4:
            result.append(Entry(parts[3], int(parts[0], 8), parts[1], parts[2]))
    return result


_FS_TYPES = "ext[234]|xfs|btrfs|zfs|jfs|f2fs|reiserfs|vfat|overlay|tmpfs"
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev", "/run")

SCAN = (
    # every local, disk-like filesystem once (-xdev keeps each find root on its own device)
    f"roots=$(awk '$3 ~ /^({_FS_TYPES})$/ && $2 !~ /^\\/(proc|sys|dev|run)(\\/|$)/ "
    "{print $2}' /proc/self/mounts | sort -u); "
    "find ${roots:-/} -xdev \\( "
    + " -o ".join(f"-path {p}" for p in _PSEUDO_ROOTS)
    + " \\) -prune -o \\( "
    "\\( -type f -perm -0002 -printf 'ww-file\\t%p\\n' \\) , "
    "\\( -type d -perm -0002 ! -perm -1000 -printf 'ww-dir\\t%p\\n' \\) , "
    "\\( -nouser -printf 'unowned\\t%p\\n' \\) , "
    "\\( -nogroup -printf 'ungrouped\\t%p\\n' \\) \\) 2>/dev/null"
    f" | awk -F'\\t' '{{n[$1]++; if (n[$1] <= {SCAN_LIMIT}) print}} "
    'END {for (k in n) print "count\\t" k "\\t" n[k]}\''
)
SSHD_DROPINS_COMMAND = (
    "find /etc/ssh/sshd_config.d -maxdepth 1 -type f -printf '%m\\t%u\\t%g\\t%p\\n' "
    "2>/dev/null; true"
)
LOGFILES_COMMAND = (
    "find /var/log -xdev -type f -printf '%m\\t%u\\t%g\\t%p\\n' 2>/dev/null | head -n 2000"
)

register_section("system-scan", SCAN, parse_scan)
register_section("system-sshd-dropins", SSHD_DROPINS_COMMAND, parse_entries)
register_section("system-logfiles", LOGFILES_COMMAND, parse_entries)
