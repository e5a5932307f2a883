"""AWS: the boto3 client layer and the ArchiveBucket provider (S3 Object Lock + KMS).

`AwsClient` (client.py) holds one boto3 Session, S3/KMS clients per region and a bounded
thread pool that runs boto3's sync calls for the async providers; every failure is an
`AwsError` subclass (errors.py). `ArchiveBucketProvider` (buckets.py) maps the ArchiveBucket
kind onto S3 (shapes in bucket_shape.py, sync I/O in bucket_io.py, KMS in kms.py) and
enforces the WORM safety table (bucket_safety.py) itself. `aws_providers` (provider.py)
builds the ProviderSet a target plugs in.

Called by: reconciler.cli.targets (to be wired), the sandbox, tests. Imports nothing from
recon above `reconciler.providers`.
"""

from reconciler.providers.aws.bucket_safety import bucket_rules, classify_bucket
from reconciler.providers.aws.buckets import ARCHIVE_SCHEMA, ArchiveBucketProvider
from reconciler.providers.aws.client import AwsClient, AwsConfig
from reconciler.providers.aws.errors import (
    AccessDeniedError,
    ArchiveRefusedError,
    AwsCredentialsError,
    AwsError,
    AwsRequestRejectedError,
    AwsThrottledError,
    AwsUnavailableError,
    BucketNotFoundError,
    KmsAliasMissingError,
)
from reconciler.providers.aws.provider import AWS_KINDS, aws_providers

__all__ = [
    "ARCHIVE_SCHEMA",
    "AWS_KINDS",
    "AccessDeniedError",
    "ArchiveBucketProvider",
    "ArchiveRefusedError",
    "AwsClient",
    "AwsConfig",
    "AwsCredentialsError",
    "AwsError",
    "AwsRequestRejectedError",
    "AwsThrottledError",
    "AwsUnavailableError",
    "BucketNotFoundError",
    "KmsAliasMissingError",
    "aws_providers",
    "bucket_rules",
    "classify_bucket",
]
