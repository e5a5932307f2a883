"""`recon evidence`: check and read the runtime's hash-chained evidence log.

    recon evidence verify [--db PATH] [--project-dir DIR] [--format text|json]
                          [--heads [--bucket NAME] [--heads-prefix P]] [--heads-dir DIR]
    recon evidence show   [--db PATH] [--project-dir DIR] [--last N] [--format text|json]

The log defaults to `.recon/runtime.db` under --project-dir. `verify` walks the chain and
names the first broken seq and the kind of break (edited, deleted, reordered,
head-mismatch); exit 0 intact, 2 tampered, 1 error (no log, unreadable, S3 unreachable).
`--heads` also reads the chain heads the runtime published to the archive bucket (the
manifests' only ArchiveBucket, or `--bucket` metadata.name; the sandbox's S3 or the named
target's aws: account) so a deleted tail or a wholesale rewrite is caught; `--heads-dir`
reads heads saved as files instead. Both commands only read.

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.cli.archive_commands import pick_archive
from reconciler.cli.common import cli, fail, now_utc, run_async, variables, with_vars
from reconciler.errors import EXIT_CHANGES, EXIT_OK, ReconError, UsageError
from reconciler.runtime.evidence import (
    DEFAULT_DB,
    DEFAULT_PREFIX,
    ChainHead,
    EvidenceRecord,
    VerifyReport,
    read_heads,
    read_heads_dir,
    read_records,
    verify,
)

_db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False),
    help=f"The evidence log (default: {DEFAULT_DB} under --project-dir).",
)
_project_option = click.option(
    "--project-dir",
    "project_dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The folder holding recon.yaml.",
)


@cli.group()
def evidence() -> None:
    """Check and read the runtime's hash-chained evidence log."""


def db_path(db: str | None, project_dir: str) -> Path:
    return Path(db) if db else Path(project_dir) / DEFAULT_DB


def published_heads(
    project_dir: str, bucket_name: str | None, prefix: str, assignments: tuple[str, ...], files: tuple[str, ...]
) -> tuple[list[ChainHead], str]:
    """The heads published to the project's archive bucket, and where they were read."""
    from reconciler.cli.targets import named_aws_config, sandbox_aws_config, sandbox_dir  # noqa: PLC0415
    from reconciler.engine.workspace import open_workspace  # noqa: PLC0415
    from reconciler.manifest.project import SANDBOX  # noqa: PLC0415
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)
    from reconciler.sandbox.process import ensure_running  # noqa: PLC0415

    ws = open_workspace([project_dir], variables(assignments, files), today=now_utc().date())
    archive = pick_archive(ws, bucket_name)
    if ws.project.target == SANDBOX:
        config = sandbox_aws_config(ensure_running(sandbox_dir(ws.root)).services, archive.region)
    else:
        target = ws.project.targets.get(ws.project.target)
        if target is None or target.aws is None:
            raise UsageError(
                f"target '{ws.project.target}' has no aws: section, so the published chain heads cannot be read",
                next_step="add aws: to the target in recon.yaml, or pass --heads-dir DIR with saved heads",
            )
        config = named_aws_config(target.aws, archive.region)
    aws = AwsClient(config)
    try:
        heads = read_heads(aws.s3(archive.region), archive.bucket, prefix)
    finally:
        run_async(aws.aclose())
    return heads, f"s3://{archive.bucket}/{prefix}"


def render_verify(report: VerifyReport, db: Path, heads_from: str | None) -> str:
    where = f" ({report.heads_checked} published heads checked from {heads_from})" if heads_from else ""
    if report.broken is None:
        return (
            f"evidence log {db}: intact, {report.records} records, head seq {report.head_seq} "
            f"hash {report.head_hash[:16]}…{where}\n"
        )
    broken = report.broken
    return (
        f"evidence log {db}: TAMPERED at seq {broken.seq}: {broken.kind}\n"
        f"  {broken.detail}\n"
        f"  {report.records} records read{where}\n"
        "  next: keep the file as found (do not repair it) and compare it with the archived chain heads\n"
    )


@evidence.command("verify")
@_db_option
@_project_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option("--heads", "use_heads", is_flag=True, help="Also check the chain heads published to the archive bucket.")
@click.option("--bucket", "bucket_name", metavar="NAME", help="With --heads: the ArchiveBucket's metadata.name.")
@click.option("--heads-prefix", default=DEFAULT_PREFIX, show_default=True, help="With --heads: the heads' key prefix.")
@click.option(
    "--heads-dir", type=click.Path(file_okay=False), help="Check chain heads saved as *.json files in this folder."
)
@with_vars
def verify_command(
    db: str | None,
    project_dir: str,
    output_format: str,
    use_heads: bool,
    bucket_name: str | None,
    heads_prefix: str,
    heads_dir: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Walk the evidence log's hash chain; name the first edited, deleted or reordered record.

    Exit 0 intact, 2 tampered, 1 error. Changes nothing.
    """
    path = db_path(db, project_dir)
    try:
        if use_heads and heads_dir:
            raise UsageError("--heads and --heads-dir both name where heads come from", next_step="pass one of them")
        heads: list[ChainHead] = []
        heads_from: str | None = None
        if heads_dir:
            heads, heads_from = read_heads_dir(heads_dir), heads_dir
        elif use_heads:
            heads, heads_from = published_heads(project_dir, bucket_name, heads_prefix, var_assignments, var_files)
        report = verify(path, heads)
    except ReconError as error:
        fail(error)
        return
    if output_format == "json":
        click.echo(json.dumps({"db": str(path), "heads_from": heads_from, **report.to_json()}, indent=2))
    else:
        click.echo(render_verify(report, path, heads_from), nl=False)
    sys.exit(EXIT_OK if report.intact else EXIT_CHANGES)


def render_table(records: list[EvidenceRecord]) -> str:
    header = ("SEQ", "RECORDED_AT", "CONVERSATION", "RECORDING", "STATUS", "SNAPSHOT", "AUDIO", "HASH")
    rows = [
        (
            str(r.seq),
            r.recorded_at,
            r.conversation_id,
            r.recording_id,
            r.status,
            r.snapshot_sha256[:12],
            (r.audio_sha256 or "-")[:12],
            r.hash[:12],
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in [header, *rows]
    )


@evidence.command("show")
@_db_option
@_project_option
@click.option("--last", "last", type=click.IntRange(min=1), default=20, show_default=True, help="How many records.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def show_command(db: str | None, project_dir: str, last: int, output_format: str) -> None:
    """The last records of the evidence log (as stored; `verify` checks them)."""
    path = db_path(db, project_dir)
    try:
        records = read_records(path, last=last)
    except ReconError as error:
        fail(error)
        return
    if output_format == "json":
        click.echo(json.dumps([r.to_json() for r in records], indent=2, ensure_ascii=False))
    elif not records:
        click.echo(f"evidence log {path}: no records")
    else:
        click.echo(render_table(records), nl=False)
