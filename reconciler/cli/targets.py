"""Which providers a project's target uses.

`sandbox` (the default, also used when no target is configured) is the embedded estate:
the Genesys kinds (Queue, RecordingPolicy, LegalHold, RecordingSettings) talk to the
sandbox's Genesys-Cloud-compatible server over HTTP on loopback — started on demand
(`reconciler.sandbox.process.ensure_running`) and persisted under
`<project>/.recon/sandbox/` — and ArchiveBucket talks to the sandbox's S3 (a moto server)
through boto3, with exactly the clients and providers a real org and account use. The
kinds whose providers are not built yet (MarketDataFeed, CollectorTopology) still use the
package's fake providers over `<project>/.recon/sandbox/estate.json`.

A named target uses the Genesys Cloud provider for its `genesys:` org (region or explicit
URLs, credentials from env:/file: references) and the AWS provider for its `aws:` account
(region, profile, endpointUrl; credentials from boto3's chain). Kinds no provider of that
target manages are listed by `unmanaged_kinds` so the CLI can say so instead of silently
skipping them.

Wherever a set has both a platform LegalHold provider and the AWS provider (the sandbox
always; a named target with genesys: and aws:), `_hold_archives` replaces the LegalHold
provider by `ArchivedLegalHoldProvider` around it, sharing the AWS set's client: a hold then
also sets S3 object legal holds on the archived recordings in its scope.

Called by: reconciler.cli.engine_commands and estate_commands.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import redact, secretrefs
from reconciler.engine.workspace import Workspace
from reconciler.errors import UsageError
from reconciler.manifest.project import SANDBOX, AwsTarget, GenesysTarget, Project
from reconciler.providers.base import ProviderSet
from reconciler.providers.genesys.client import GenesysClient, Sender
from reconciler.providers.genesys.provider import GENESYS_KINDS, genesys_providers
from reconciler.providers.genesys.regions import Endpoints, endpoints
from reconciler.sandbox.process import ensure_running
from reconciler.testing import FakeStore, fake_providers, manageable_kinds

if TYPE_CHECKING:
    from reconciler.providers.aws import AwsConfig

SANDBOX_DIR = Path(".recon") / "sandbox"
SANDBOX_ESTATE = SANDBOX_DIR / "estate.json"
AWS_KINDS = ("ArchiveBucket",)
"""Kinds the AWS provider serves (reconciler.providers.aws, imported only when used: boto3
is slow to import)."""
FOLDED_KINDS = frozenset({"RetentionPolicy"})
"""Kinds with no platform object on Genesys: folded into the objects that use them."""


def sandbox_estate_path(root: Path) -> Path:
    return root / SANDBOX_ESTATE


def sandbox_dir(root: Path) -> Path:
    return root / SANDBOX_DIR


def providers_for(project: Project, root: Path) -> ProviderSet:
    """The providers of the project's target, ready to use (call `aclose()` when done)."""
    from reconciler.providers.aws import aws_providers  # noqa: PLC0415 (boto3 is slow to import)

    day = dt.datetime.now(dt.UTC).date()
    if project.target == SANDBOX:
        running = ensure_running(sandbox_dir(root))
        client, client_id = genesys_client(project, root)
        providers = genesys_providers(client, client_id=client_id, today=day)
        aws = aws_providers(sandbox_aws_config(running.services))
        providers = _hold_archives(providers.merged(aws), aws, day)
        rest = [k for k in manageable_kinds() if k not in (*GENESYS_KINDS, *AWS_KINDS) and k not in FOLDED_KINDS]
        return providers.merged(fake_providers(FakeStore.open(sandbox_estate_path(root)), rest))
    target = project.targets.get(project.target)
    if target is None or (target.genesys is None and target.aws is None):
        raise UsageError(
            f"target '{project.target}' has neither a genesys: nor an aws: section",
            next_step="add genesys: {region, clientId, clientSecret} and/or aws: {region} to the target, "
            "or set `target: sandbox`",
        )
    providers = ProviderSet()
    if target.genesys is not None:
        client, client_id = genesys_client(project, root)
        providers = genesys_providers(client, client_id=client_id, today=day)
    if target.aws is not None:
        aws = aws_providers(named_aws_config(target.aws))
        providers = _hold_archives(providers.merged(aws), aws, day)
    return providers


def genesys_client(project: Project, root: Path, *, sender: Sender | None = None) -> tuple[GenesysClient, str]:
    """(a client for the target's Genesys org, its OAuth client id): the sandbox's (started
    on demand) or a named target's genesys: section. UsageError when the target has none.
    `sender`: the HTTP engine for API requests (default httpx; the runtime passes a
    `transport.PooledSender`)."""
    if project.target == SANDBOX:
        running = ensure_running(sandbox_dir(root))
        endpoints = Endpoints(login_base=running.login_url, api_base=running.genesys_url)
        return GenesysClient(endpoints, running.client_id, running.client_secret, sender=sender), running.client_id
    target = project.targets.get(project.target)
    if target is None or target.genesys is None:
        raise UsageError(
            f"target '{project.target}' has no genesys: section",
            next_step="add genesys: {region, clientId, clientSecret} to the target, or set `target: sandbox`",
        )
    settings = target.genesys
    client_id = resolve_reference(settings.clientId, root, "clientId")
    secret = resolve_reference(settings.clientSecret, root, "clientSecret")
    client = GenesysClient(
        genesys_endpoints(settings),
        client_id,
        secret,
        rate_per_minute=settings.ratePerMinute,
        sender=sender,
        allow_link_local=settings.allowLinkLocal,
    )
    return client, client_id


def sandbox_aws_config(services: Mapping[str, Any], region: str | None = None) -> AwsConfig:
    """How to reach the sandbox's S3 (its moto server, with its test keys), in `region`
    (default: the sandbox's)."""
    from reconciler.providers.aws import AwsConfig  # noqa: PLC0415 (boto3 is slow to import)

    entry = services.get("s3")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
        reason = entry.get("reason") if isinstance(entry, Mapping) else None
        raise UsageError(
            f"the sandbox's S3 service is not running ({reason or 'not listed'}), so archive buckets cannot be reached",
            next_step="run `recon sandbox down` then `recon sandbox up`, and check .recon/sandbox/sandbox.log",
        )
    return AwsConfig(
        region=region or str(entry.get("region") or "eu-west-1"),
        endpoint_url=entry["url"],
        access_key_id=str(entry.get("accessKeyId")),
        secret_access_key=str(entry.get("secretAccessKey")),
        deny_insecure_transport=False,  # moto ignores policy conditions: the Deny would deny everything
    )


def named_aws_config(settings: AwsTarget, region: str | None = None) -> AwsConfig:
    """How to reach a named target's AWS account (credentials from boto3's chain; the keys in
    the environment are registered for redaction: a session token travels with each request)."""
    from reconciler.providers.aws import AwsConfig  # noqa: PLC0415 (boto3 is slow to import)

    redact.register(os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN"))
    return AwsConfig(region=region or settings.region, endpoint_url=settings.endpointUrl, profile=settings.profile)


def _hold_archives(providers: ProviderSet, aws: ProviderSet, day: dt.date) -> ProviderSet:
    """`providers` with its platform LegalHold provider wrapped to hold archived recordings
    in S3 too (see the module docstring); unchanged when it has no LegalHold provider."""
    from reconciler.providers.archive_holds import ArchivedLegalHoldProvider  # noqa: PLC0415 (boto3)
    from reconciler.providers.aws.provider import aws_client  # noqa: PLC0415 (boto3 is slow to import)

    platform, client = providers.get("LegalHold"), aws_client(aws)
    if platform is None or client is None:
        return providers
    holds = ArchivedLegalHoldProvider(platform, client, today=day)
    providers.providers["LegalHold"] = holds
    providers.pass_hooks.append(holds.new_pass)
    return providers


def _sandbox_aws(services: Mapping[str, Any]) -> ProviderSet:
    from reconciler.providers.aws import AwsConfig, aws_providers  # noqa: PLC0415 (boto3 is slow to import)

    entry = services.get("s3")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
        reason = entry.get("reason") if isinstance(entry, Mapping) else None
        raise UsageError(
            f"the sandbox's S3 service is not running ({reason or 'not listed'}), so ArchiveBuckets cannot be planned",
            next_step="run `recon sandbox down` then `recon sandbox up`, and check .recon/sandbox/sandbox.log",
        )
    config = AwsConfig(
        region=str(entry.get("region") or "eu-west-1"),
        endpoint_url=entry["url"],
        access_key_id=str(entry.get("accessKeyId")),
        secret_access_key=str(entry.get("secretAccessKey")),
        deny_insecure_transport=False,  # moto ignores policy conditions: the Deny would deny everything
    )
    return aws_providers(config)


def _named_aws(settings: AwsTarget) -> ProviderSet:
    from reconciler.providers.aws import AwsConfig, aws_providers  # noqa: PLC0415 (boto3 is slow to import)

    return aws_providers(AwsConfig(region=settings.region, endpoint_url=settings.endpointUrl, profile=settings.profile))


def unmanaged_kinds(project: Project) -> list[str]:
    """Kinds the target cannot manage in this build (plans leave them out)."""
    if project.target == SANDBOX:
        return []
    target = project.targets.get(project.target)
    served: set[str] = set(FOLDED_KINDS)
    if target is not None and target.genesys is not None:
        served |= set(GENESYS_KINDS)
    if target is not None and target.aws is not None:
        served |= set(AWS_KINDS)
    return [k for k in manageable_kinds() if k not in served]


def genesys_endpoints(settings: GenesysTarget) -> Endpoints:
    if settings.apiUrl:
        return Endpoints(login_base=settings.loginUrl or settings.apiUrl, api_base=settings.apiUrl)
    found = endpoints(settings.region)
    return Endpoints(login_base=settings.loginUrl or found.login_base, api_base=found.api_base)


def resolve_reference(value: str, root: Path, field: str) -> str:
    """`env:NAME` -> the variable's value, `file:PATH` -> the file's text, inside the project
    root or $RECON_SECRETS_DIR only (reconciler.secretrefs); anything else is the value
    itself. The value is registered for redaction and never echoed."""
    return secretrefs.resolve(value, root, field)


def request_count(providers: ProviderSet) -> int:
    """HTTP requests the providers have made so far (0 when they do not count)."""
    return providers.request_counter() if providers.request_counter is not None else 0


def requests_by_platform(providers: ProviderSet) -> dict[str, int]:
    """HTTP requests made so far, per platform (empty when the set does not say)."""
    return {platform: count() for platform, count in providers.request_counters.items()}


def say_unmanaged(ws: Workspace) -> None:
    """Tell the user (stderr) which declared kinds this target leaves out of the plan."""
    left = sorted({r.kind for r in ws.estate.resources.values()} & set(unmanaged_kinds(ws.project)))
    if left:
        click.echo(
            f"Note: target '{ws.project.target}' has no provider for {', '.join(left)} in this build; "
            "they are not planned here (add the platform's section to the target, or their provider is not built yet).",
            err=True,
        )
