"""The off-site copy's immutability, as data: what a bucket's lock configuration must be, and
what is wrong with one read back from the server.

Pure (the boto3 calls are in ``s3.py``). An S3 server may accept a weakened configuration
(Versity Gateway does not refuse shortening a COMPLIANCE retention), so cityguard never trusts
that its own settings stuck: it reads the bucket back and reports every weakening.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        return ["no lifecycle rule expires noncurrent versions: they pile up"]
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
