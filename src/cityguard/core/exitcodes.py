"""The exit codes every cityguard command shares, so scripts and schedulers can rely on them."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # something checked failed: a control, a drill, an eIDAS rule
    USAGE = 2  # usage or configuration error; nothing was changed
    PARTIAL = 3  # some hosts unreachable or a step could not run
    INTERNAL = 4  # a bug in cityguard
    INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT), as shells report it
