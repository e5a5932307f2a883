"""`recon verify-archive`: is every recording the platform made archived, intact?

    recon verify-archive [PATHS] [--bucket NAME] [--from DATE] [--to DATE]
                         [--format text|json|markdown] [-o FILE]

Reads the manifests for the ArchiveBucket (`--bucket` is its metadata.name; default: the only
one), asks the target's Genesys org which conversations started in the period (default: the
last 30 days, UTC, inclusive) and its org id, reads the bucket's export for the period
(keys, `_metadata.json`, SHA-256 of each audio object) and compares them
(reconciler.engine.archive_integrity). Exit 0 no gaps, 2 any gap, 1 error (bad input,
platform or S3 unreachable). Changes nothing.

Target: the sandbox's Genesys server and S3 (started on demand), or a named target's
genesys: and aws: blocks (both needed).

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.common import (
    DAY,
    MAX_PERIOD_DAYS,
    NAME,
    check_period,
    cli,
    fail,
    now_utc,
    run_async,
    variables,
    with_vars,
    write_output,
)
from reconciler.cli.progress import note
from reconciler.cli.targets import genesys_client, named_aws_config, sandbox_aws_config, sandbox_dir
from reconciler.dates import MIN_DAY, day_end, day_start
from reconciler.engine.archive_integrity import IntegrityReport, compare
from reconciler.engine.workspace import Workspace, open_workspace
from reconciler.errors import EXIT_CHANGES, EXIT_OK, ReconError, UsageError
from reconciler.manifest.project import SANDBOX
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.recordings import organization_id, recorded_conversations
from reconciler.render.archive_integrity import render_json, render_markdown, render_text
from reconciler.sandbox.process import ensure_running

if TYPE_CHECKING:
    from reconciler.providers.aws.client import AwsConfig

DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Archive:
    """The ArchiveBucket to verify: manifest name, real bucket name, region."""

    name: str
    bucket: str
    region: str


def pick_archive(ws: Workspace, name: str | None) -> Archive:
    archives = ws.estate.of_kind("ArchiveBucket")
    names = ", ".join(sorted(r.name for r in archives)) or "none"
    if name is None and len(archives) != 1:
        raise UsageError(
            f"the manifests declare {len(archives)} ArchiveBuckets ({names}); say which to verify",
            next_step="pass --bucket NAME (an ArchiveBucket's metadata.name)",
        )
    chosen = archives[0] if name is None else ws.estate.get("ArchiveBucket", name)
    if chosen is None:
        raise UsageError(f"no ArchiveBucket named {name!r} in the manifests (declared: {names})")
    spec: Any = chosen.spec
    return Archive(chosen.name, str(spec.bucketName), str(spec.region))


def period(first: dt.date | None, last: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """(first, last) inclusive UTC days; default the last DEFAULT_DAYS days up to today.
    At most MAX_PERIOD_DAYS: every recording of the period is listed and hashed."""
    end = last or today
    start = first or max(MIN_DAY, end - dt.timedelta(days=DEFAULT_DAYS - 1))
    check_period(start, end, max_days=MAX_PERIOD_DAYS)
    return start, end


def clients_for(ws: Workspace, region: str) -> tuple[GenesysClient, AwsConfig]:
    """The target's Genesys client and AWS settings (a named target needs both sections)."""
    if ws.project.target == SANDBOX:
        client, _ = genesys_client(ws.project, ws.root)
        return client, sandbox_aws_config(ensure_running(sandbox_dir(ws.root)).services, region)
    target = ws.project.targets.get(ws.project.target)
    if target is None or target.genesys is None or target.aws is None:
        raise UsageError(
            f"target '{ws.project.target}' needs both a genesys: and an aws: section to verify an archive",
            next_step="add them to the target in recon.yaml, or use `target: sandbox`",
        )
    client, _ = genesys_client(ws.project, ws.root)
    return client, named_aws_config(target.aws, region)


async def verify(
    genesys: GenesysClient, config: AwsConfig, archive: Archive, first: dt.date, last: dt.date
) -> IntegrityReport:
    from reconciler.providers.aws.archive_reader import read_archive  # noqa: PLC0415 (boto3)
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3)

    try:
        aws = AwsClient(config)
    except BaseException:
        await genesys.aclose()
        raise
    try:
        org_id = await organization_id(genesys)
        start, end = day_start(first), day_end(last)
        platform = await recorded_conversations(genesys, start, end)
        found = await read_archive(aws, archive.bucket, archive.region, org_id, first, last)
    finally:
        await aws.aclose()
        await genesys.aclose()
    return compare(
        platform,
        found.objects,
        found.metadata,
        found.hashes,
        bucket=archive.bucket,
        org_id=org_id,
        first=first,
        last=last,
    )


@cli.command("verify-archive")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--bucket", "bucket_name", type=NAME, help="The ArchiveBucket's metadata.name (default: the only one).")
@click.option("--from", "date_from", type=DAY, help="First day (UTC) of the period; default 30 days before --to.")
@click.option("--to", "date_to", type=DAY, help="Last day (UTC, inclusive) of the period; default today.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to a file.")
@with_vars
def verify_archive(
    paths: tuple[str, ...],
    bucket_name: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    output_format: str,
    output: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Check that every recording the platform made is in the archive, intact.

    Object present, _metadata.json present with the platform's conversationId, participants,
    start and end, and a SHA-256 matching the audio. Exit 0 no gaps, 2 gaps found, 1 error.
    Changes nothing.
    """
    try:
        first, last = period(date_from, date_to, now_utc().date())
        ws = open_workspace(paths, variables(var_assignments, var_files), today=now_utc().date())
        archive = pick_archive(ws, bucket_name)
        genesys, config = clients_for(ws, archive.region)
        report = run_async(verify(genesys, config, archive, first, last))
        renderers = {"json": render_json, "markdown": render_markdown, "text": render_text}
        text = renderers[output_format](report)
        if output:
            write_output(output, text, "archive integrity report")
    except ReconError as error:
        fail(error)
        return
    if output:
        note(f"wrote the archive integrity report to {output}")
    else:
        click.echo(text, nl=False)
    sys.exit(EXIT_CHANGES if report.has_gaps else EXIT_OK)
