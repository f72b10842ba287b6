"""What a command handler is given besides its arguments: where to write for people.

Consoles are made on first use, so `cityguard --help` never pays for rich. Tests give a
Context with recording consoles instead of patching globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def _console(stderr: bool) -> Console:
    from rich.console import Console

    # soft wrap: long messages stay on one line, so logs and greps see them whole
    return Console(stderr=stderr, soft_wrap=True)


@dataclass
class Context:
    """Standard output for results, standard error for progress and problems."""

    _out: Console | None = field(default=None, repr=False)
    _err: Console | None = field(default=None, repr=False)

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err
