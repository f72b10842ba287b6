"""Durations as plans write them (``90s``, ``15m``, ``4h``, ``1d``, ``1h30m``) and as reports
show them."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WHOLE = re.compile(r"^(?:\d+[smhdw])+$")


def parse_duration(text: str) -> int:
    """Seconds in ``text``; ValueError (a sentence for the operator) when it is not a duration."""
    value = text.strip().replace(" ", "")
    if not _WHOLE.match(value):
        raise ValueError(
            f"'{text}' is not a duration: write a number and a unit, e.g. 90s, 15m, 4h, 1d"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """``3725`` → ``1h02m05s``; under a minute with one decimal (``12.3s``)."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"
