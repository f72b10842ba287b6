"""The `expect` helper checks use: it asserts, and keeps the observed and expected values.

A check reads like its control's sentence, and whatever it saw on the host travels into the
evidence, whether the check passed or failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import pytest

NOT_APPLICABLE_PREFIX = "not-applicable: "


def _text(value: Any) -> str:
    return "(absent)" if value is None else str(value)


class Expect:
    def __init__(self) -> None:
        self.observed: list[str] = []
        self.expected: list[str] = []

    def _record(self, observed: Any, expected: str, label: str | None) -> None:
        prefix = f"{label}: " if label else ""
        self.observed.append(prefix + _text(observed))
        self.expected.append(prefix + expected)

    def _verdict(self, ok: bool, observed: Any, expected: str, label: str | None) -> None:
        self._record(observed, expected, label)
        if not ok:
            where = f"{label}: " if label else ""
            raise AssertionError(f"{where}observed {_text(observed)}, expected {expected}")

    def equal(self, observed: Any, expected: Any, label: str | None = None) -> None:
        self._verdict(observed == expected, observed, str(expected), label)

    def each_equal(self, observed: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
        """Every key of `expected` equals its value in `observed` (a missing key is absent).

        All keys are recorded, each labelled with its key, before one AssertionError lists every
        mismatch: the evidence then shows the whole picture, not just the first difference.
        """
        mismatches = []
        for key, wanted in expected.items():
            seen = observed.get(key)
            self._record(seen, str(wanted), key)
            if seen != wanted:
                mismatches.append(f"{key}: observed {_text(seen)}, expected {wanted}")
        if mismatches:
            raise AssertionError("; ".join(mismatches))

    def one_of(self, observed: Any, allowed: Iterable[Any], label: str | None = None) -> None:
        options = list(allowed)
        self._verdict(
            observed in options, observed, "one of " + ", ".join(map(str, options)), label
        )

    def at_most(self, observed: int | None, limit: int, label: str | None = None) -> None:
        self._verdict(observed is not None and observed <= limit, observed, f"<= {limit}", label)

    def mode_at_most(self, mode: int | None, limit: int, label: str | None = None) -> None:
        """Permission bits no wider than `limit`: no bit set that the limit does not allow."""
        observed = None if mode is None else f"{mode:04o}"
        ok = mode is not None and mode & ~limit == 0
        self._verdict(ok, observed, f"{limit:04o} or stricter", label)

    def fail(self, reason: str, observed: Any = None, expected: str = "") -> NoReturn:
        """The check cannot pass, for a reason that is not a compared value (the site lacks what
        the control needs): fails with ``reason`` as the evidence's reason."""
        self._record(observed, expected or "(see reason)", None)
        raise AssertionError(reason)

    @staticmethod
    def not_applicable(reason: str) -> NoReturn:
        """Only for state this host cannot hold (docs/lab.md lists it); the reason goes into
        the evidence."""
        pytest.skip(NOT_APPLICABLE_PREFIX + reason)
