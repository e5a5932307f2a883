"""KMS keys behind ArchiveBucket encryption: alias ↔ key, and creating a key when asked.

S3 stores the key a bucket encrypts with (recon writes the key ARN, so retargeting an alias
to another key shows as drift rather than silently changing the archive's key). Observe
reads it back and names it by alias: `AliasIndex` lists a region's aliases ONCE per observe
pass (kms:ListAliases, paged) and answers every bucket of that pass from memory.

Called by: reconciler.providers.aws.bucket_io (sync helpers run in the client's pool).
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.providers.aws.client import AwsClient
from reconciler.providers.aws.errors import KmsAliasMissingError


def key_id_of(reference: str) -> str:
    """The key id or alias name in a KMS key reference: an id, a key ARN, an alias name or
    an alias ARN (arn:aws:kms:eu-west-1:123456789012:alias/x → alias/x)."""
    if ":alias/" in reference:
        return "alias/" + reference.split(":alias/", 1)[1]
    if ":key/" in reference:
        return reference.split(":key/", 1)[1]
    return reference


class AliasIndex:
    """Aliases by target key id, per region, read once and shared by one observe pass.
    Thread-safe: the first bucket of a region lists, the others wait for it."""

    def __init__(self, client: AwsClient) -> None:
        self.client = client
        self._by_region: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.Lock()
        self.listings = 0

    def aliases(self, region: str) -> dict[str, list[str]]:
        with self._lock:
            found = self._by_region.get(region)
            if found is None:
                found = self._list(region)
                self._by_region[region] = found
                self.listings += 1
            return found

    def _list(self, region: str) -> dict[str, list[str]]:
        kms = self.client.kms(region)
        by_key: dict[str, list[str]] = {}
        marker: str | None = None
        while True:
            page: dict[str, Any] = AwsClient.call(
                kms, "list_aliases", Limit=100, **({"Marker": marker} if marker else {})
            )
            for alias in page.get("Aliases") or []:
                target = alias.get("TargetKeyId")
                if target:
                    by_key.setdefault(str(target), []).append(str(alias["AliasName"]))
            marker = page.get("NextMarker")
            if not page.get("Truncated") or not marker:
                return {key: sorted(names) for key, names in by_key.items()}

    def names(self, region: str) -> set[str]:
        """Every alias name in `region`."""
        return {name for names in self.aliases(region).values() for name in names}

    def alias_for(self, region: str, reference: str, prefer: str | None) -> str:
        """The alias naming key `reference`: `prefer` when it is one of them, else the first
        customer alias; the key reference itself when no alias names the key."""
        key = key_id_of(reference)
        if key.startswith("alias/"):
            return key
        names = [n for n in self.aliases(region).get(key, []) if not n.startswith("alias/aws/")]
        if prefer in names:
            return str(prefer)
        return names[0] if names else reference


def resolve_key(client: AwsClient, region: str, alias: str, *, create: bool, bucket: str) -> str:
    """The ARN of the key `alias` names in `region`. When it does not exist: create the key
    and alias if `create`, else KmsAliasMissingError naming the alias."""
    kms = client.kms(region)
    found = AwsClient.call(kms, "describe_key", bucket=bucket, absent=("NotFoundException",), KeyId=alias)
    if found is not None:
        return str(found["KeyMetadata"]["Arn"])
    if not create:
        raise KmsAliasMissingError(alias, region, bucket=bucket)
    key = AwsClient.call(
        kms,
        "create_key",
        bucket=bucket,
        Description=f"recon: encrypts archive bucket {bucket} ({alias})",
        KeyUsage="ENCRYPT_DECRYPT",
        Tags=[{"TagKey": "managed-by", "TagValue": "recon"}],
    )["KeyMetadata"]
    raced = AwsClient.call(
        kms,
        "create_alias",
        bucket=bucket,
        absent=("AlreadyExistsException",),
        AliasName=alias,
        TargetKeyId=key["KeyId"],
    )
    if raced is None:  # another apply created the alias first: use its key, drop ours
        AwsClient.call(kms, "schedule_key_deletion", bucket=bucket, KeyId=key["KeyId"], PendingWindowInDays=7)
        return str(AwsClient.call(kms, "describe_key", bucket=bucket, KeyId=alias)["KeyMetadata"]["Arn"])
    return str(key["Arn"])
