"""The AWS ProviderSet: one boto3 client layer, one kind.

    ArchiveBucket  → an S3 bucket with Object Lock, SSE-KMS, policy, logging, tags
                     (reconciler.providers.aws.buckets)

`aws_providers` returns the providers plus the hooks the engine and CLI use:
`request_counter` reports AWS HTTP requests made (for `--verbose`); closing the set closes
the clients and the thread pool. `aws_client(set)` hands that shared client to providers
of other kinds that also write to S3 (the archive side of LegalHold).

Called by: reconciler.cli.targets (once the lead wires it), bench/ benchmarks, tests.
"""

from __future__ import annotations

from reconciler.providers.aws.buckets import ArchiveBucketProvider
from reconciler.providers.aws.client import AwsClient, AwsConfig
from reconciler.providers.base import Provider, ProviderSet

AWS_KINDS = ("ArchiveBucket",)


def aws_providers(config: AwsConfig, *, client: AwsClient | None = None) -> ProviderSet:
    """The providers for the AWS account `config` reaches (or the given shared `client`)."""
    aws = client or AwsClient(config)
    providers: dict[str, Provider] = {"ArchiveBucket": ArchiveBucketProvider(aws)}
    return ProviderSet(
        providers,
        request_counter=lambda: aws.requests,
        request_counters={"AWS": lambda: aws.requests},
        on_close=[aws.aclose],
    )


def aws_client(providers: ProviderSet) -> AwsClient | None:
    """The AwsClient a set built by `aws_providers` shares, or None when it has none."""
    bucket = providers.get("ArchiveBucket")
    return bucket.client if isinstance(bucket, ArchiveBucketProvider) else None
