"""Errors raised by recon's AWS client layer, one class per way an AWS call can fail.

    ProviderError (reconciler.providers.base)
    └── AwsError                    any failed AWS call; carries the IAM action and the bucket
        ├── AwsCredentialsError         no credentials, or AWS rejected them
        ├── AccessDeniedError           403 / AccessDenied: names the action and the bucket
        ├── BucketNotFoundError         NoSuchBucket / 404
        ├── KmsAliasMissingError        encryption.kmsKeyAlias names no key and createKey is false
        ├── ArchiveRefusedError         recon's own safety rules refused a change or a delete
        ├── AwsThrottledError           SlowDown / Throttling after every retry (retryable)
        ├── AwsUnavailableError         5xx, timeouts, connection failures after retries (retryable)
        └── AwsRequestRejectedError     any other refusal: AWS's code and message

`translate(exc, action, bucket)` maps a botocore exception to the right class. Messages name
the IAM action (s3:PutBucketPolicy) and the bucket; they never contain access keys,
secrets, session tokens or signed URLs.

Called by: reconciler.providers.aws.client (every call goes through it) and the providers
of this package.
"""

from __future__ import annotations

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from reconciler.providers.base import ProviderError

CREDENTIALS_NEXT_STEP = (
    "check the target's AWS profile or access key references (env:/file:) and that they belong "
    "to the account that owns the archive"
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403", "Forbidden"})
NOT_FOUND_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
THROTTLED_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidToken",
    }
)
# botocore operation names whose IAM action is spelled differently.
IAM_ACTIONS = {
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:DeleteObjects": "s3:DeleteObjectVersion",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action a botocore `operation` of `service` needs (s3:PutBucketPolicy)."""
    name = f"{service}:{operation}"
    return IAM_ACTIONS.get(name, name)


class AwsError(ProviderError):
    """An AWS call failed. `action` is the IAM action ("s3:PutBucketPolicy"), `bucket` the
    bucket it concerned ("" when none), `code` AWS's error code ("" when none)."""

    def __init__(
        self,
        message: str,
        *,
        action: str = "",
        bucket: str = "",
        code: str = "",
        next_step: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message, next_step=next_step, retryable=retryable)
        self.action = action
        self.bucket = bucket
        self.code = code


class AwsCredentialsError(AwsError):
    """No usable credentials, or AWS rejected the ones configured."""


class AccessDeniedError(AwsError):
    """AWS refused `action` on `bucket` for the identity recon runs as."""


class BucketNotFoundError(AwsError):
    """The bucket does not exist (or is not visible to this account)."""


class KmsAliasMissingError(AwsError):
    """The manifest names a KMS alias that does not exist and does not ask recon to create it."""

    def __init__(self, alias: str, region: str, *, bucket: str = "") -> None:
        super().__init__(
            f"KMS alias {alias} does not exist in {region}, so bucket {bucket} cannot be encrypted with it",
            action="kms:DescribeKey",
            bucket=bucket,
            code="NotFoundException",
            next_step=(
                f"create the key and alias {alias} in {region} (aws kms create-key, aws kms create-alias), "
                "or set encryption.createKey: true so recon creates them"
            ),
        )
        self.alias = alias


class ArchiveRefusedError(AwsError):
    """recon refused to send a change its own safety rules forbid (S3 emulators accept some)."""


class AwsThrottledError(AwsError):
    """AWS kept throttling after every retry. Retryable later."""


class AwsUnavailableError(AwsError):
    """AWS failed (5xx), timed out or could not be reached after every retry. Retryable later."""


class AwsRequestRejectedError(AwsError):
    """Any other refusal: the request was malformed, conflicting or not allowed in this state."""


def translate(exc: Exception, *, service: str, operation: str, bucket: str = "") -> AwsError:
    """The recon error for botocore exception `exc` raised by `operation` of `service`."""
    action = iam_action(service, operation)
    on = f" on bucket {bucket}" if bucket else ""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        detail = str(error.get("Message", "")).strip()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        tail = f": {detail}" if detail else ""
        if code in CREDENTIAL_CODES:
            return AwsCredentialsError(
                f"AWS rejected recon's credentials for {action}{on} ({code})",
                action=action,
                bucket=bucket,
                code=code,
                next_step=CREDENTIALS_NEXT_STEP,
            )
        if code in ACCESS_DENIED_CODES or status == 403:
            resource = f"arn:aws:s3:::{bucket}" if bucket and service == "s3" else "the resource"
            return AccessDeniedError(
                f"AWS denied {action}{on} ({code or 'HTTP 403'}){tail}",
                action=action,
                bucket=bucket,
                code=code,
                next_step=f"grant {action} on {resource} to the IAM identity recon runs as, then run again",
            )
        if code in NOT_FOUND_CODES or (status == 404 and service == "s3" and not code.startswith("NoSuch")):
            return BucketNotFoundError(
                f"bucket {bucket or '(unknown)'} does not exist ({action})",
                action=action,
                bucket=bucket,
                code=code or "404",
                next_step="it may have been deleted outside recon; run `recon plan` to see the drift",
            )
        if code in THROTTLED_CODES or status == 429:
            return AwsThrottledError(
                f"AWS throttled {action}{on} after every retry ({code})",
                action=action,
                bucket=bucket,
                code=code,
                next_step="wait a minute and run again, or lower recon's AWS concurrency",
                retryable=True,
            )
        if status >= 500:
            return AwsUnavailableError(
                f"AWS failed on {action}{on} (HTTP {status}, {code}){tail}",
                action=action,
                bucket=bucket,
                code=code,
                next_step="run again later; check the AWS Health Dashboard if it persists",
                retryable=True,
            )
        return AwsRequestRejectedError(
            f"AWS rejected {action}{on} ({code or f'HTTP {status}'}){tail}",
            action=action,
            bucket=bucket,
            code=code,
            next_step="check the manifest values for this bucket; run again with --verbose and report it if they look right",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return AwsCredentialsError(
            f"no usable AWS credentials for {action}{on} ({type(exc).__name__})",
            action=action,
            bucket=bucket,
            next_step=CREDENTIALS_NEXT_STEP,
        )
    if isinstance(exc, NoRegionError):
        return AwsRequestRejectedError(
            f"no AWS region configured for {action}{on}",
            action=action,
            bucket=bucket,
            next_step="set the target's region",
        )
    if isinstance(exc, EndpointConnectionError | BotoConnectionError):
        return AwsUnavailableError(
            f"could not reach AWS for {action}{on} ({type(exc).__name__})",
            action=action,
            bucket=bucket,
            next_step="check the network, proxy and the target's endpoint URL, then run again",
            retryable=True,
        )
    if isinstance(exc, BotoCoreError):
        return AwsUnavailableError(
            f"AWS call {action}{on} failed ({type(exc).__name__})",
            action=action,
            bucket=bucket,
            retryable=True,
        )
    return AwsError(f"AWS call {action}{on} failed unexpectedly ({type(exc).__name__})", action=action, bucket=bucket)
