"""Which noncurrent versions and delete markers cityguard expires where the S3 server has no
lifecycle rules: those that stopped being current more than ``noncurrent_days`` ago, dated
right on S3 and never too early on Versity Gateway (the shapes below are what it listed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityguard.drill.objectlock import ListedVersion, expired_noncurrent, noncurrent_since
from cityguard.drill.s3 import Expiry, key_prefix

T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
DAYS = 8


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def version(key: str, vid: str, minutes: float, *, latest: bool = False) -> ListedVersion:
    return ListedVersion(key, vid, at(minutes), latest)


def marker(key: str, vid: str, minutes: float, *, latest: bool = False) -> ListedVersion:
    return ListedVersion(key, vid, at(minutes), latest, marker=True)


def since(listed: list[ListedVersion]) -> dict[str, datetime]:
    return {entry.version_id: when for entry, when in noncurrent_since(listed)}


def test_s3_dates_each_entry_when_it_was_made_so_the_newer_ones_time_counts() -> None:
    # put v1 at 0, overwrite with v2 at 10, delete at 20 (marker m), put v3 at 30
    listed = [
        version("k", "v3", 30, latest=True),
        version("k", "v2", 10),
        version("k", "v1", 0),
        marker("k", "m", 20),
    ]
    assert since(listed) == {"m": at(30), "v2": at(20), "v1": at(10)}


def test_versity_dates_a_noncurrent_entry_when_it_stopped_being_current() -> None:
    # the same history as Versity Gateway 1.8.0 lists it: v1 dated with the overwrite, v2
    # with the delete, the marker with the next put; the newest noncurrent one is exact, an
    # older one is taken for younger than it is (kept longer), never for older
    listed = [
        version("k", "v3", 30, latest=True),
        version("k", "v2", 20),
        version("k", "v1", 10),
        marker("k", "m", 30.5),  # Versity dates markers to the microsecond, versions to the second
    ]
    assert since(listed) == {"m": at(30.5), "v2": at(30), "v1": at(20)}


def test_a_current_delete_marker_dated_with_what_it_hides_dates_the_delete_right() -> None:
    # Versity: put at 0, delete at 10; the marker says 0, the hidden version says 10
    assert since([marker("k", "m", 0, latest=True), version("k", "v1", 10)]) == {"v1": at(10)}
    # S3: the marker says 10, the version 0
    assert since([marker("k", "m", 10, latest=True), version("k", "v1", 0)]) == {"v1": at(10)}


def test_the_current_entry_is_never_expired_however_old() -> None:
    listed = [
        version("old", "v1", -100 * 24 * 60, latest=True),
        marker("gone", "m", -100 * 24 * 60, latest=True),
        version("gone", "v1", -100 * 24 * 60),
        version("unflagged", "v2", -99 * 24 * 60),  # no entry says latest: the newest stays
        version("unflagged", "v1", -100 * 24 * 60),
    ]
    expired = expired_noncurrent(listed, T0, DAYS)
    assert {(v.key, v.version_id) for v in expired} == {("gone", "v1"), ("unflagged", "v1")}


def test_only_what_stopped_being_current_more_than_the_days_ago_expires() -> None:
    day = 24 * 60
    listed = [
        version("a", "a2", -DAYS * day - 1, latest=True),
        version("a", "a1", -20 * day),  # noncurrent since a2: just over the days
        version("b", "b2", -DAYS * day + 1, latest=True),
        version("b", "b1", -20 * day),  # noncurrent since b2: just under
        version("c", "c3", 0, latest=True),
        marker("c", "cm", -10 * day),  # noncurrent since c3: now
        version("c", "c1", -30 * day),  # noncurrent since the marker: 10 days
    ]
    expired = expired_noncurrent(listed, T0, DAYS)
    assert [v.version_id for v in expired] == ["a1", "c1"]
    assert expired_noncurrent(listed, T0 + timedelta(days=30), DAYS) == [
        listed[1],
        listed[3],
        listed[5],
        listed[6],
    ]


def test_entries_at_the_same_time_give_the_same_answer_in_any_order() -> None:
    listed = [
        marker("k", "m2", 5, latest=True),
        marker("k", "m1", 3),
        version("k", "v2", 3),
        version("k", "v1", 1),
    ]
    assert since(listed) == since(list(reversed(listed))) == {
        "m1": at(5), "v2": at(5), "v1": at(3)
    }  # fmt: skip


def test_parse_reads_a_listing_entry() -> None:
    entry = {"Key": "p/data/x", "VersionId": "01M8", "LastModified": T0, "IsLatest": True}
    assert ListedVersion.parse(entry, marker=True) == ListedVersion(
        "p/data/x", "01M8", T0, latest=True, marker=True
    )


def test_the_plan_prefix_and_the_report_line() -> None:
    prefixes = [key_prefix(p) for p in ("", "/", "portal", "/portal/")]
    assert prefixes == ["", "", "portal/", "portal/"]
    assert Expiry(3, 2).line == "noncurrent versions: 3 expired, 2 still locked"
