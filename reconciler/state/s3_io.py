"""The S3 calls the S3 state backend makes, with S3's answers turned into recon's errors.

- `S3Settings`: where the S3 endpoint is and which credentials to use (the CLI resolves
  them from the project's target; every field None means boto3's default chain).
- `make_client`: a boto3 S3 client from S3Settings (boto3 is imported only here, lazily).
- `Bucket`: the handful of object operations the backend needs — get, conditional put,
  conditional delete, list, batch delete — plus the versioning check. A failed
  precondition (HTTP 412, or 409 ConditionalRequestConflict) raises `Precondition`; a
  missing bucket, refused access, missing credentials or an unreachable endpoint raise
  StateError naming the bucket and what to do.

boto3 ships no type stubs: clients are `Any` at this boundary and nothing else in the
package sees them.

Called by: reconciler.state.s3 and reconciler.state.s3_lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.jsonsafe import MAX_BYTES as MAX_OBJECT_BYTES
from reconciler.state.model import StateError

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass(frozen=True, slots=True)
class S3Settings:
    """How to reach S3 for the state; None fields fall back to boto3's default chain."""

    endpoint_url: str | None = None
    """An S3-compatible endpoint (the sandbox's moto, Ceph RGW); None for AWS."""
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    profile: str | None = None
    """A named AWS profile (~/.aws/config)."""
    create_bucket: bool = False
    """Create the bucket, versioned, when it does not exist (only the embedded sandbox does:
    its S3 lives in memory). Everywhere else the state bucket is the user's to create."""


class Precondition(Exception):
    """A conditional write or delete was refused: the object is not as expected."""


class Missing(Exception):
    """The object does not exist."""


@dataclass(frozen=True, slots=True)
class Found:
    """An object as read: its bytes, ETag and last-modified time."""

    body: bytes
    etag: str
    modified: datetime | None


def make_client(settings: S3Settings, region: str | None) -> Any:
    """A boto3 S3 client for `settings`; `region` (recon.yaml's state.region) wins over
    the settings' region. StateError when the profile does not exist."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 (slow import, only when S3 is used)
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        session = boto3.session.Session(profile_name=settings.profile)
    except BotoCoreError as error:
        raise StateError(
            f"cannot use AWS profile {settings.profile!r} for the S3 state: {error}",
            next_step="fix targets.<name>.aws.profile in recon.yaml or your ~/.aws/config",
        ) from None
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
    )
    return session.client(
        "s3",
        region_name=region or settings.region,
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=config,
    )


def _code(error: Exception) -> tuple[str, int]:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code, int(status) if isinstance(status, int) else 0


class Bucket:
    """One bucket through one client; `where` names the state in messages."""

    def __init__(self, client: Any, name: str, where: str) -> None:
        self.client = client
        self.name = name
        self.where = where

    @contextlib.contextmanager
    def _errors(self, action: str, key: str = "") -> Iterator[None]:
        """Translate boto3's exceptions; NoSuchKey and 412/409 are for the caller."""
        try:
            yield
        except Exception as error:
            code, status = _code(error)
            target = f"s3://{self.name}/{key}" if key else f"S3 bucket {self.name}"
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise Precondition(code or str(status)) from None
            if key and (code in ("NoSuchKey", "NotFound", "404") or (status == 404 and code != "NoSuchBucket")):
                raise Missing(key) from None
            if code == "NoSuchBucket":
                raise StateError(
                    f"the state bucket {self.name} does not exist (state {self.where})",
                    next_step=f"create it with versioning enabled: aws s3api create-bucket --bucket {self.name} "
                    f"... && aws s3api put-bucket-versioning --bucket {self.name} "
                    "--versioning-configuration Status=Enabled; or fix state.bucket in recon.yaml",
                ) from None
            if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch") or (
                status == 403
            ):
                raise StateError(
                    f"cannot {action} {target}: access denied ({code or status})",
                    next_step="check the credentials in use and that they allow s3:GetObject, PutObject, "
                    f"DeleteObject, ListBucket and GetBucketVersioning on {self.name}",
                ) from None
            if type(error).__name__ == "NoCredentialsError":
                raise StateError(
                    f"cannot {action} {target}: no AWS credentials found",
                    next_step="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
                    "or targets.<name>.aws.profile in recon.yaml",
                ) from None
            if code or status:
                raise StateError(f"cannot {action} {target}: S3 answered {code or status}: {error}") from None
            raise StateError(
                f"cannot {action} {target}: {error}",
                next_step="check the S3 endpoint (targets.<name>.aws.endpointUrl) and your network",
            ) from None

    # -- the bucket ------------------------------------------------------------------------

    def check_versioning(self, *, create: bool) -> None:
        """StateError unless the bucket exists with versioning Enabled. With `create`, a
        missing bucket is created with versioning on. Never changes an existing bucket."""
        try:
            with self._errors("read the versioning of"):
                status = self.client.get_bucket_versioning(Bucket=self.name).get("Status")
        except StateError:
            if not create or self._exists():
                raise
            self._create()
            return
        if status != "Enabled":
            raise StateError(
                f"the state bucket {self.name} does not have versioning enabled "
                f"(it is {status or 'not enabled'}); recon keeps state only in a versioned bucket, "
                "so that every earlier state can be recovered",
                next_step=f"if this is the right bucket: aws s3api put-bucket-versioning --bucket {self.name} "
                "--versioning-configuration Status=Enabled (recon does not change your bucket's settings)",
            )

    def _exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.name)
        except Exception as error:
            code, status = _code(error)
            if code in ("404", "NoSuchBucket", "NotFound") or status == 404:
                return False
            raise
        return True

    def _create(self) -> None:
        region = self.client.meta.region_name
        arguments: dict[str, Any] = {"Bucket": self.name}
        if region and region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with self._errors("create"):
            self.client.create_bucket(**arguments)
            self.client.put_bucket_versioning(Bucket=self.name, VersioningConfiguration={"Status": "Enabled"})

    # -- objects ---------------------------------------------------------------------------

    def get(self, key: str) -> Found | None:
        """The object at `key`, or None when there is none."""
        try:
            with self._errors("read", key):
                response = self.client.get_object(Bucket=self.name, Key=key)
                body = response["Body"].read(MAX_OBJECT_BYTES + 1)
        except Missing:
            return None
        if len(body) > MAX_OBJECT_BYTES:
            raise StateError(
                f"s3://{self.name}/{key} is larger than {MAX_OBJECT_BYTES:,} bytes; recon does not read it",
                next_step="check the state bucket and key point at recon's state",
            )
        return Found(body, str(response.get("ETag", "")), response.get("LastModified"))

    def etag(self, key: str) -> str | None:
        """The ETag of the object at `key`, or None when there is none."""
        try:
            with self._errors("read", key):
                return str(self.client.head_object(Bucket=self.name, Key=key).get("ETag", ""))
        except Missing:
            return None

    def put(self, key: str, body: bytes, *, if_match: str | None = None, create: bool = False) -> str:
        """Write `key`; returns the new ETag. `create`: only if absent (If-None-Match: *);
        `if_match`: only if its ETag is that. Precondition when the condition fails."""
        arguments: dict[str, Any] = {"Bucket": self.name, "Key": key, "Body": body, "ContentType": "application/json"}
        if create:
            arguments["IfNoneMatch"] = "*"
        elif if_match is not None:
            arguments["IfMatch"] = if_match
        try:
            with self._errors("write", key):
                return str(self.client.put_object(**arguments).get("ETag", ""))
        except Missing:  # If-Match on an object that is gone
            raise Precondition("NoSuchKey") from None

    def delete(self, key: str, *, if_match: str) -> bool:
        """Delete `key` only if its ETag is `if_match`; False when it is not (or is gone)."""
        try:
            with self._errors("delete", key):
                self.client.delete_object(Bucket=self.name, Key=key, IfMatch=if_match)
        except (Precondition, Missing):
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (all pages)."""
        found: list[str] = []
        with self._errors("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
                found.extend(str(item["Key"]) for item in page.get("Contents", []))
        return found

    def delete_many(self, keys: list[str]) -> None:
        """Delete `keys` (their current versions: delete markers in a versioned bucket)."""
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            with self._errors("delete", batch[0]["Key"]):
                response = self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StateError(
                    f"cannot delete s3://{self.name}/{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
