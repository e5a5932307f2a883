"""Helpers for the `worm` test tier: reach the real S3 Object Lock enforcer (a throwaway Ceph
RADOS Gateway started by tests/worm/rgw.sh) through boto3.

Reusable by any test under tests/worm: `from worm_store import endpoint_or_skip, s3_client, new_lock_bucket`.
The endpoint comes from the file named by RECON_WORM_ENDPOINT (`rgw.sh start DIR` writes
DIR/endpoint.json); without it every test asking for the endpoint is skipped, so the normal
suite stays green on a machine without Ceph.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ENV_VAR = "RECON_WORM_ENDPOINT"
SKIP_REASON = f"{ENV_VAR} is unset: the WORM tier needs a real RGW; run `make test-worm`"


@dataclass(frozen=True)
class WormEndpoint:
    """Where the S3 store listens and the keys of its test user (endpoint.json, camelCase on disk)."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str

    @classmethod
    def load(cls, path: str | Path) -> WormEndpoint:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(raw["url"], raw["accessKeyId"], raw["secretAccessKey"], raw["region"])

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments for `boto3.client("s3", ...)` (or a provider that builds its own client)."""
        return {
            "endpoint_url": self.url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "region_name": self.region,
        }


def endpoint_from_env() -> WormEndpoint | None:
    path = os.environ.get(ENV_VAR)
    return WormEndpoint.load(path) if path else None


def endpoint_or_skip() -> WormEndpoint:
    """The endpoint from RECON_WORM_ENDPOINT, or skip the calling test with the reason."""
    endpoint = endpoint_from_env()
    if endpoint is None:
        pytest.skip(SKIP_REASON)
    return endpoint


# Bounded: a hung gateway fails a test in seconds, never hangs the run; no retries, so every
# answer asserted on is the store's first answer.
CLIENT_CONFIG = Config(
    s3={"addressing_style": "path"},
    connect_timeout=5,
    read_timeout=30,
    retries={"total_max_attempts": 1},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


def s3_client(endpoint: WormEndpoint) -> Any:
    """A fresh boto3 S3 client for the endpoint (path-style addressing, no retries)."""
    return boto3.client("s3", config=CLIENT_CONFIG, **endpoint.boto3_kwargs())


def unique_bucket_name(prefix: str = "recon-worm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def new_lock_bucket(s3: Any, prefix: str = "recon-worm", default_retention: dict[str, Any] | None = None) -> str:
    """Create a uniquely named bucket with Object Lock enabled (hence versioned) and return its name.
    `default_retention`, e.g. {"Mode": "COMPLIANCE", "Days": 1}, sets the bucket's default rule."""
    name = unique_bucket_name(prefix)
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if default_retention is not None:
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": default_retention}},
        )
    return name


def utc_in(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


@dataclass(frozen=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str

    def ref(self) -> dict[str, str]:
        """Bucket, Key and VersionId keyword arguments for boto3 calls on this version."""
        return {"Bucket": self.bucket, "Key": self.key, "VersionId": self.version_id}


def put_version(
    s3: Any,
    bucket: str,
    key: str = "call-0001.opus",
    *,
    mode: str | None = None,
    retain_days: float = 1,
    legal_hold: bool = False,
    body: bytes = b"recording",
) -> ObjectVersion:
    """Upload one object version, optionally with retention (`mode` COMPLIANCE/GOVERNANCE until
    now + `retain_days`) and a legal hold."""
    extra: dict[str, Any] = {}
    if mode is not None:
        extra |= {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": utc_in(retain_days)}
    if legal_hold:
        extra["ObjectLockLegalHoldStatus"] = "ON"
    answer = s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return ObjectVersion(bucket, key, answer["VersionId"])


def version_exists(s3: Any, version: ObjectVersion) -> bool:
    listing = s3.list_object_versions(Bucket=version.bucket, Prefix=version.key)
    return any(v["Key"] == version.key and v["VersionId"] == version.version_id for v in listing.get("Versions", []))


@dataclass(frozen=True)
class Answer:
    """What the store answered: "OK" or its S3 error code, and the HTTP status."""

    code: str
    status: int

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"


def answer(call: Callable[[], Any]) -> Answer:
    """Run one S3 call; return its answer instead of raising on an S3 error."""
    try:
        response = call()
    except ClientError as error:
        return Answer(error.response["Error"].get("Code", "?"), error.response["ResponseMetadata"]["HTTPStatusCode"])
    return Answer("OK", response["ResponseMetadata"]["HTTPStatusCode"])


# ---- what a client sends (for tests of recon's own provider) ------------------------------------

WRITE_PREFIXES = ("Put", "Delete", "Create", "Copy", "Upload", "Complete", "Abort", "Restore")
"""S3/KMS operation names that change the store (PutObjectLockConfiguration, DeleteObjects ...)."""


class CallRecorder:
    """Records the operation name of every call a botocore client is about to send, via the
    client's own event hook (`before-call.<service>.*`), so a test sees exactly what a
    provider attempted, including calls the store would refuse. Use `watch(client)` for each
    client, `clear()` between steps, `writes` for the changing calls."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(str(model.name))

    def watch(self, client: Any) -> CallRecorder:
        service = client.meta.service_model.endpoint_prefix
        client.meta.events.register(f"before-call.{service}.*", self._record, unique_id=f"worm-recorder-{id(self)}")
        return self

    def clear(self) -> None:
        self.operations.clear()

    @property
    def writes(self) -> list[str]:
        return [op for op in self.operations if op.startswith(WRITE_PREFIXES)]
