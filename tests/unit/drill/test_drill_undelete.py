"""Undoing an incident's deletes: which delete markers are the incident's, and --since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityguard.core.errors import UsageError
from cityguard.drill.s3 import DeleteMarker, deleted_at, markers_since
from cityguard.drill.undelete import parse_since

T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def test_the_delete_is_the_later_of_the_marker_and_what_it_hides() -> None:
    # S3: the marker carries the delete's time; Versity: the hidden version does
    assert deleted_at(T0, [T0 - timedelta(days=3)]) == T0
    assert deleted_at(T0 - timedelta(days=3), [T0]) == T0
    assert deleted_at(T0, []) == T0


def test_only_markers_at_or_after_the_incident_are_undone() -> None:
    markers = [
        DeleteMarker("p/locks/old", "v1", T0 - timedelta(seconds=1)),
        DeleteMarker("p/data/b", "v2", T0),
        DeleteMarker("p/config", "v3", T0 + timedelta(minutes=5)),
    ]
    assert [m.key for m in markers_since(markers, T0)] == ["p/config", "p/data/b"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-12-03T06:00:00", "has no time zone"),
        ("2999-01-01T00:00:00Z", "is in the future"),
    ],
)
def test_since_must_be_a_past_time_with_a_zone(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_since(text)
    assert parse_since("2026-12-03T06:00:00Z") == T0
