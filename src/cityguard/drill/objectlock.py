"""The off-site copy's immutability, as data: what a bucket's lock configuration must be, and
what is wrong with one read back from the server.

Pure (the boto3 calls are in ``s3.py``). An S3 server may accept a weakened configuration
(Versity Gateway does not refuse shortening a COMPLIANCE retention), so cityguard never trusts
that its own settings stuck: it reads the bucket back and reports every weakening. Where the
server has no lifecycle rules, ``expired_noncurrent`` picks what the rule would expire.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MODE = "COMPLIANCE"
LIFECYCLE_RULE_ID = "cityguard-expire-noncurrent"


@dataclass(frozen=True)
class LockPolicy:
    """What the plan asks of the bucket."""

    retention_days: int
    mode: str = MODE

    @property
    def noncurrent_days(self) -> int:
        """Old versions (restic's lock and prune deletes leave them) expire once no longer
        locked: a day after the retention."""
        return self.retention_days + 1


@dataclass(frozen=True)
class ObservedLock:
    """What the server reports: versioning status, Object Lock configuration, lifecycle rules."""

    versioning: str | None
    lock_enabled: bool
    mode: str | None
    days: int | None
    noncurrent_days: int | None

    @classmethod
    def parse(
        cls,
        versioning: dict[str, Any],
        lock: dict[str, Any] | None,
        lifecycle: dict[str, Any] | None,
    ) -> ObservedLock:
        config = (lock or {}).get("ObjectLockConfiguration") or {}
        default = (config.get("Rule") or {}).get("DefaultRetention") or {}
        days = default.get("Days")
        if days is None and default.get("Years") is not None:
            days = int(default["Years"]) * 365
        noncurrent = None
        for rule in (lifecycle or {}).get("Rules") or []:
            if rule.get("Status") != "Enabled":
                continue
            expiration = rule.get("NoncurrentVersionExpiration") or {}
            if expiration.get("NoncurrentDays") is not None:
                noncurrent = int(expiration["NoncurrentDays"])
        return cls(
            versioning=versioning.get("Status"),
            lock_enabled=config.get("ObjectLockEnabled") == "Enabled",
            mode=default.get("Mode"),
            days=int(days) if days is not None else None,
            noncurrent_days=noncurrent,
        )


def lock_problems(observed: ObservedLock, wanted: LockPolicy) -> list[str]:
    """One sentence per way the bucket is weaker than the plan asks; empty when it is not."""
    problems = []
    if observed.versioning != "Enabled":
        problems.append(f"versioning is {observed.versioning or 'off'}, not Enabled")
    if not observed.lock_enabled:
        problems.append("Object Lock is not enabled on the bucket")
    if observed.mode != wanted.mode:
        problems.append(f"default retention mode is {observed.mode or 'none'}, not {wanted.mode}")
    if observed.days is None or observed.days < wanted.retention_days:
        have = f"{observed.days} days" if observed.days is not None else "none"
        problems.append(f"default retention is {have}, less than {wanted.retention_days} days")
    return problems


def lifecycle_warnings(observed: ObservedLock, wanted: LockPolicy) -> list[str]:
    """What is wrong with the expiry of old versions: it costs storage, it does not weaken the
    lock (a lifecycle rule cannot remove a locked version before its retention ends)."""
    if observed.noncurrent_days is None:
        return [
            "no lifecycle rule expires noncurrent versions: cityguard expires them on each "
            "`backup offsite --setup` run"
        ]
    if observed.noncurrent_days < wanted.retention_days:
        return [
            f"noncurrent versions expire after {observed.noncurrent_days} days, before the "
            f"{wanted.retention_days}-day retention ends"
        ]
    return []


def lock_configuration(wanted: LockPolicy) -> dict[str, Any]:
    return {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": wanted.mode, "Days": wanted.retention_days}},
    }


def lifecycle_configuration(wanted: LockPolicy) -> dict[str, Any]:
    return {
        "Rules": [
            {
                "ID": LIFECYCLE_RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": wanted.noncurrent_days},
            }
        ]
    }


@dataclass(frozen=True)
class ListedVersion:
    """One entry of a bucket's version listing: an object version or a delete marker."""

    key: str
    version_id: str
    modified: datetime
    latest: bool
    marker: bool = False

    @classmethod
    def parse(cls, entry: dict[str, Any], *, marker: bool) -> ListedVersion:
        """An entry of ``Versions`` or ``DeleteMarkers`` in a ``list_object_versions`` page."""
        return cls(
            key=str(entry["Key"]),
            version_id=str(entry["VersionId"]),
            modified=entry["LastModified"],
            latest=bool(entry.get("IsLatest")),
            marker=marker,
        )


def noncurrent_since(listed: Iterable[ListedVersion]) -> list[tuple[ListedVersion, datetime]]:
    """Every noncurrent version and delete marker, with when it stopped being current: when the
    next newer entry of its key was made.

    The current entry of a key is the one flagged ``IsLatest`` (the newest if none is; it is
    never returned); the entries newer than another are the current one and those dated after
    it. S3 dates each entry when it was made, so the next newer entry's time is the answer.
    Versity Gateway (posix backend) dates a noncurrent entry when it stopped being current, a
    current version when it was made and a current delete marker with the object it hides.
    The later of the entry's own time and the next newer entry's time is right on S3 and never
    too early on Versity (right for the newest noncurrent entry of a key, later for older
    ones): an entry is never taken for older than it is, at worst it is kept longer. Entries
    dated alike are not newer than each other, so their order in the listing does not matter."""
    keys: dict[str, list[ListedVersion]] = {}
    for entry in listed:
        keys.setdefault(entry.key, []).append(entry)
    found = []
    for history in keys.values():
        current, *older = sorted(history, key=lambda v: (v.latest, v.modified), reverse=True)
        times = sorted(v.modified for v in older)
        for entry in older:
            after = times[bisect_right(times, entry.modified) :]
            newer = min([current.modified, *after[:1]])
            found.append((entry, max(entry.modified, newer)))
    return found


def expired_noncurrent(
    listed: Iterable[ListedVersion], now: datetime, noncurrent_days: int
) -> list[ListedVersion]:
    """The noncurrent versions and delete markers that stopped being current more than
    ``noncurrent_days`` before ``now``: what the lifecycle rule expires."""
    cutoff = now - timedelta(days=noncurrent_days)
    return [entry for entry, since in noncurrent_since(listed) if since < cutoff]
