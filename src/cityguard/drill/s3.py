"""The edge to an S3 server (boto3): create or verify the off-site bucket with versioning,
Object Lock default retention and a lifecycle rule for noncurrent versions, read its lock
configuration back, extend the retention of current objects, expire noncurrent versions the way
the lifecycle rule does (for servers without lifecycle rules), and undo the deletes of an
incident (remove only the delete markers made since it).

Keys come from the plan's secret references, read when used and registered for redaction;
boto3's errors are reduced to their code and message, redacted, in one ``OffsiteError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cityguard.core.errors import CityguardError
from cityguard.core.secrets import SecretRef, redact
from cityguard.drill.objectlock import (
    ListedVersion,
    LockPolicy,
    ObservedLock,
    expired_noncurrent,
    lifecycle_configuration,
    lock_configuration,
)

# S3 answers a delete of a version whose retention has not ended with AccessDenied.
LOCKED_CODES = frozenset({"AccessDenied"})
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


class OffsiteError(CityguardError):
    """The S3 server refused or could not be reached (exit code 3)."""


@dataclass(frozen=True)
class DeleteMarker:
    """A delete marker that hides a key (the newest version of it is the marker)."""

    key: str
    version_id: str
    deleted_at: datetime


def deleted_at(marker_time: datetime, hidden_times: list[datetime]) -> datetime:
    """When a key was deleted: the marker's time, or later if a version it hides says so.

    S3 dates a delete marker when the delete happened. Versity Gateway (posix backend) dates
    it with the hidden object's time and the hidden version with the delete's, so the later of
    the two is the delete on both; a marker is always newer than what it hides."""
    return max([marker_time, *hidden_times])


@dataclass(frozen=True)
class Expiry:
    """What an expiry of noncurrent versions did: removed, and refused by the server because
    their retention has not ended (kept: the lock doing its job)."""

    expired: int
    locked: int

    @property
    def line(self) -> str:
        return f"noncurrent versions: {self.expired} expired, {self.locked} still locked"


def key_prefix(prefix: str) -> str:
    """The plan's ``prefix`` as the start of its keys: ``portal`` -> ``portal/``, '' -> ''."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def markers_since(markers: list[DeleteMarker], since: datetime) -> list[DeleteMarker]:
    """The markers of deletes at or after ``since`` (the incident); older ones are restic's
    own deletes (old locks, pruned packs, forgotten snapshots) and must stay."""
    return sorted((m for m in markers if m.deleted_at >= since), key=lambda m: m.key)


@dataclass
class Bucket:
    endpoint: str
    name: str
    region: str
    access_key: SecretRef
    secret_key: SecretRef
    attempts: int = 3

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key.reveal(),
            aws_secret_access_key=self.secret_key.reveal(),
            config=Config(
                retries={"max_attempts": self.attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def ensure(self, policy: LockPolicy) -> list[str]:
        """Create the bucket if missing, then (re)apply versioning, the default retention and
        the lifecycle rule. Returns what was done, one line each."""
        client = self.client()
        done = []
        with _errors(f"bucket {self.name}"):
            names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if self.name not in names:
                client.create_bucket(Bucket=self.name, ObjectLockEnabledForBucket=True)
                done.append(f"created bucket {self.name} with Object Lock")
            client.put_bucket_versioning(
                Bucket=self.name, VersioningConfiguration={"Status": "Enabled"}
            )
            client.put_object_lock_configuration(
                Bucket=self.name, ObjectLockConfiguration=lock_configuration(policy)
            )
            lifecycle = _optional(
                lambda: client.put_bucket_lifecycle_configuration(
                    Bucket=self.name, LifecycleConfiguration=lifecycle_configuration(policy)
                )
            )
        if lifecycle is None:
            done.append(
                "the server does not implement lifecycle rules: cityguard expires noncurrent "
                "versions itself on each `backup offsite --setup` run"
            )
        done.append(
            f"versioning on, default retention {policy.mode} {policy.retention_days} days, "
            f"noncurrent versions expire after {policy.noncurrent_days} days"
        )
        return done

    def observed(self) -> ObservedLock:
        """The bucket's lock configuration as the server reports it now."""
        client = self.client()
        with _errors(f"reading the lock configuration of {self.name}"):
            versioning = client.get_bucket_versioning(Bucket=self.name)
            lock = _optional(lambda: client.get_object_lock_configuration(Bucket=self.name))
            lifecycle = _optional(
                lambda: client.get_bucket_lifecycle_configuration(Bucket=self.name)
            )
        return ObservedLock.parse(versioning, lock, lifecycle)

    def extend_retention(self, policy: LockPolicy, now: datetime | None = None) -> int:
        """Push every current object's retain-until date to now + retention where it is
        earlier; returns how many objects were extended."""
        client = self.client()
        until = (now or datetime.now(UTC)) + timedelta(days=policy.retention_days)
        extended = 0
        with _errors(f"extending retention in {self.name}"):
            for key in self._current_keys(client):
                current = _optional(
                    lambda k=key: client.get_object_retention(Bucket=self.name, Key=k)
                )
                have = ((current or {}).get("Retention") or {}).get("RetainUntilDate")
                if have is not None and have >= until:
                    continue
                client.put_object_retention(
                    Bucket=self.name,
                    Key=key,
                    Retention={"Mode": policy.mode, "RetainUntilDate": until},
                )
                extended += 1
        return extended

    def versions(self, prefix: str) -> list[ListedVersion]:
        """Every version and delete marker of the keys under ``prefix``."""
        client = self.client()
        listed: list[ListedVersion] = []
        with _errors(f"listing the versions in {self.name}"):
            paginator = client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
                listed += [ListedVersion.parse(v, marker=False) for v in page.get("Versions", [])]
                listed += [
                    ListedVersion.parse(m, marker=True) for m in page.get("DeleteMarkers", [])
                ]
        return listed

    def expire_noncurrent(
        self, policy: LockPolicy, prefix: str, now: datetime | None = None
    ) -> Expiry:
        """Do what the lifecycle rule does where the server has none: remove the versions and
        delete markers under ``prefix`` that stopped being current more than
        ``policy.noncurrent_days`` before ``now``. The server refuses a version whose retention
        has not ended: it is kept and counted. Where the server has the rule this finds
        nothing (or what the rule would expire soon)."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        expired = expired_noncurrent(
            self.versions(prefix), now or datetime.now(UTC), policy.noncurrent_days
        )
        client = self.client()
        removed = locked = 0
        with _errors(f"expiring noncurrent versions in {self.name}"):
            for start in range(0, len(expired), DELETE_BATCH):
                batch = expired[start : start + DELETE_BATCH]
                markers = {(v.key, v.version_id) for v in batch if v.marker}
                answer = client.delete_objects(
                    Bucket=self.name,
                    Delete={
                        "Objects": [{"Key": v.key, "VersionId": v.version_id} for v in batch],
                        "Quiet": True,
                    },
                )
                errors = answer.get("Errors", [])
                for error in errors:
                    # a delete marker is never locked: a refusal there is no retention
                    entry = (str(error.get("Key")), str(error.get("VersionId")))
                    if error.get("Code") not in LOCKED_CODES or entry in markers:
                        message = f"{entry[0]}: {error.get('Message', '')}"
                        raise ClientError(
                            {"Error": {"Code": error.get("Code"), "Message": message}},
                            "DeleteObjects",
                        )
                removed += len(batch) - len(errors)
                locked += len(errors)
        return Expiry(removed, locked)

    def delete_markers(self, prefix: str) -> list[DeleteMarker]:
        """Every key under ``prefix`` whose newest version is a delete marker."""
        client = self.client()
        markers: dict[str, dict[str, Any]] = {}
        hidden: dict[str, list[datetime]] = {}
        with _errors(f"listing the versions in {self.name}"):
            paginator = client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
                for marker in page.get("DeleteMarkers", []):
                    if marker.get("IsLatest"):
                        markers[str(marker["Key"])] = marker
                for version in page.get("Versions", []):
                    hidden.setdefault(str(version["Key"]), []).append(version["LastModified"])
        return [
            DeleteMarker(
                key, str(m["VersionId"]), deleted_at(m["LastModified"], hidden.get(key, []))
            )
            for key, m in sorted(markers.items())
        ]

    def remove_markers(self, markers: list[DeleteMarker]) -> int:
        """Remove the markers, so the versions they hid are current again (a marker is not
        locked; the versions never were deleted)."""
        client = self.client()
        with _errors(f"removing delete markers in {self.name}"):
            for marker in markers:
                client.delete_object(Bucket=self.name, Key=marker.key, VersionId=marker.version_id)
        return len(markers)

    def _current_keys(self, client: Any) -> Iterator[str]:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name):
            for item in page.get("Contents", []):
                yield str(item["Key"])


def _optional(call: Any) -> dict[str, Any] | None:
    """A configuration the bucket may not have (the server answers with an error code)."""
    from botocore.exceptions import ClientError

    try:
        result: dict[str, Any] = call()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if "NotFound" in code or "NoSuch" in code or code == "NotImplemented":
            return None
        raise
    return result


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Turns boto3's errors into one redacted line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        message = f"{info.get('Code', 'error')}: {info.get('Message', '')}".strip(": ")
        raise OffsiteError(redact(f"{what}: {message}")) from None
    except BotoCoreError as error:
        raise OffsiteError(redact(f"{what}: {error}")) from None
