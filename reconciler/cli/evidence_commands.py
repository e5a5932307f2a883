"""`recon evidence`: check and read the runtime's hash-chained evidence log.

    recon evidence verify [--db PATH] [--project-dir DIR] [--format text|json]
                          [--heads [--bucket NAME] [--heads-prefix P]] [--heads-dir DIR]
    recon evidence show   [--db PATH] [--project-dir DIR] [--last N] [--format text|json]
    recon evidence upgrade [--db PATH] [--project-dir DIR]
    recon evidence bind-audio [--db PATH] [--project-dir DIR] [--bucket NAME]

The log defaults to `.recon/runtime.db` under --project-dir. `verify` walks the chain and
every document it binds and names the first broken seq and the kind of break (edited,
deleted, reordered, duplicated, document-missing, document-altered, document-unbound,
head-mismatch); exit 0 intact, 2 tampered, 1 error (no log, unreadable, S3 unreachable). It
is the same verification `recon search` runs (reconciler.runtime.evidence_verify).
`--heads` also reads the chain heads this log (by its id) published to the archive bucket
(the manifests' only ArchiveBucket, or `--bucket` metadata.name; the sandbox's S3 or the
named target's aws: account) so a deleted tail, a rollback to an older copy or a wholesale
rewrite is caught; `--heads-dir` reads heads saved as files instead. Both commands only read.
`upgrade` binds a format-2 log's documents to its chain (what opening it for writing does
anyway; reconciler.runtime.evidence_migrate). `bind-audio` appends an `audio_archived` record
per stamped call whose audio the export has archived (reconciler.runtime.audio_binding).

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.archive_commands import Archive, pick_archive
from reconciler.cli.common import NAME, cli, fail, now_utc, run_async, variables, with_vars
from reconciler.errors import EXIT_CHANGES, EXIT_OK, ReconError, UsageError
from reconciler.runtime.evidence import (
    DEFAULT_DB,
    DEFAULT_PREFIX,
    EvidenceLog,
    EvidenceRecord,
    PublishedHeads,
    VerifyReport,
    log_identity,
    read_heads,
    read_heads_dir,
    read_records,
    refuse_not_a_file,
    verify,
)

if TYPE_CHECKING:
    from reconciler.engine.workspace import Workspace
    from reconciler.providers.aws.client import AwsConfig
    from reconciler.runtime.audio_binding import BindReport

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


def archive_access(
    project_dir: str, bucket_name: str | None, assignments: tuple[str, ...], files: tuple[str, ...], why: str
) -> tuple[Workspace, Archive, AwsConfig]:
    """The project's archive bucket and the AWS settings to reach it; see `archive_config`."""
    from reconciler.engine.workspace import open_workspace  # noqa: PLC0415

    ws = open_workspace([project_dir], variables(assignments, files), today=now_utc().date())
    archive = pick_archive(ws, bucket_name)
    return ws, archive, archive_config(ws, archive, why)


def archive_config(ws: Workspace, archive: Archive, why: str) -> AwsConfig:
    """The AWS settings that reach `archive`: the sandbox's S3 or the named target's aws:
    account; `why` completes the error when the target has none."""
    from reconciler.cli.targets import named_aws_config, sandbox_aws_config, sandbox_dir  # noqa: PLC0415
    from reconciler.manifest.project import SANDBOX  # noqa: PLC0415
    from reconciler.sandbox.process import ensure_running  # noqa: PLC0415

    if ws.project.target == SANDBOX:
        return sandbox_aws_config(ensure_running(sandbox_dir(ws.root)).services, archive.region)
    target = ws.project.targets.get(ws.project.target)
    if target is None or target.aws is None:
        raise UsageError(
            f"target '{ws.project.target}' has no aws: section, so {why}",
            next_step="add aws: to the target in recon.yaml",
        )
    return named_aws_config(target.aws, archive.region)


def published_heads(
    project_dir: str,
    bucket_name: str | None,
    prefix: str,
    assignments: tuple[str, ...],
    files: tuple[str, ...],
    log_id: str | None,
) -> PublishedHeads:
    """The heads log `log_id` published to the project's archive bucket."""
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    _, archive, config = archive_access(
        project_dir, bucket_name, assignments, files, "the published chain heads cannot be read (or pass --heads-dir)"
    )
    aws = AwsClient(config)
    try:
        return read_heads(aws.s3(archive.region), archive.bucket, log_id, prefix)
    finally:
        run_async(aws.aclose())


def heads_for(
    path: Path,
    use_heads: bool,
    heads_dir: str | None,
    project_dir: str,
    bucket_name: str | None,
    prefix: str,
    assignments: tuple[str, ...],
    files: tuple[str, ...],
) -> PublishedHeads | None:
    """The published heads to check the log at `path` against (None: none asked for), from
    --heads-dir or, with --heads, from the archive bucket under the log's own id."""
    if use_heads and heads_dir:
        raise UsageError("--heads and --heads-dir both name where heads come from", next_step="pass one of them")
    if heads_dir:
        return read_heads_dir(heads_dir)
    if not use_heads:
        return None
    rules = log_identity(path)
    if rules.problem:
        return PublishedHeads(source="(not read: the log's identity is damaged)")
    return published_heads(project_dir, bucket_name, prefix, assignments, files, rules.log_id)


def ignored_heads(report: VerifyReport, heads: PublishedHeads | None) -> int:
    """Heads seen that belong to other logs (or predate log ids) and were not checked."""
    if heads is None:
        return 0
    return report.foreign_heads + sum(heads.others.values()) + (heads.legacy if report.log_id else 0)


def render_verify(report: VerifyReport, db: Path, heads: PublishedHeads | None) -> str:
    where = ""
    if heads is not None:
        ignored = ignored_heads(report, heads)
        where = f" ({report.heads_checked} published heads checked from {heads.source}"
        where += f"; {ignored} of other logs, or keyed by seq only, ignored)" if ignored else ")"
    identity = f"log {report.log_id}" if report.log_id else "format 2, no log id"
    lines = []
    if report.broken is None:
        lines.append(
            f"evidence log {db}: intact, {report.records} records, {report.documents} documents bound, "
            f"head seq {report.head_seq} hash {report.head_hash[:16]}… ({identity}){where}"
        )
        if heads is not None and report.unanchored:
            lines.append(
                f"  {report.unanchored} record(s) after the last published head: a cut there shows only "
                "once the next head is published"
            )
    else:
        broken = report.broken
        lines += [
            f"evidence log {db}: TAMPERED at seq {broken.seq}: {broken.kind}",
            f"  {broken.detail}",
            f"  {report.records} records read ({identity}){where}",
            "  next: keep the file as found (do not repair it) and compare it with the archived chain heads",
        ]
    if not report.documents_bound:
        lines.append(
            "  format 2: losing a document is not detectable yet; `recon evidence upgrade` binds them to the chain"
        )
    return "\n".join(lines) + "\n"


def verify_json(report: VerifyReport, db: Path, heads: PublishedHeads | None) -> str:
    return json.dumps(
        {
            "db": str(db),
            "heads_from": heads.source if heads else None,
            "heads_ignored": ignored_heads(report, heads),
            **report.to_json(),
        },
        indent=2,
    )


_heads_options = (
    click.option(
        "--heads", "use_heads", is_flag=True, help="Also check the chain heads published to the archive bucket."
    ),
    click.option("--bucket", "bucket_name", type=NAME, help="With --heads: the ArchiveBucket's metadata.name."),
    click.option(
        "--heads-prefix", default=DEFAULT_PREFIX, show_default=True, help="With --heads: the heads' key prefix."
    ),
    click.option(
        "--heads-dir", type=click.Path(file_okay=False), help="Check chain heads saved as *.json files in this folder."
    ),
)


def heads_options(command: Any) -> Any:
    """--heads, --bucket, --heads-prefix and --heads-dir (recon evidence verify and recon search)."""
    for option in reversed(_heads_options):
        command = option(command)
    return command


@evidence.command("verify")
@_db_option
@_project_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@heads_options
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
    """Walk the evidence log's hash chain and its documents; name the first edited, deleted,
    reordered or duplicated record, or missing or altered document.

    Exit 0 intact, 2 tampered, 1 error. Changes nothing.
    """
    path = db_path(db, project_dir)
    try:
        heads = heads_for(
            path, use_heads, heads_dir, project_dir, bucket_name, heads_prefix, var_assignments, var_files
        )
        report = verify(path, heads.heads if heads is not None else None)
    except ReconError as error:
        fail(error)
        return
    if output_format == "json":
        click.echo(verify_json(report, path, heads))
    else:
        click.echo(render_verify(report, path, heads), nl=False)
    sys.exit(EXIT_OK if report.intact else EXIT_CHANGES)


@evidence.command("upgrade")
@_db_option
@_project_option
def upgrade_command(db: str | None, project_dir: str) -> None:
    """Bind a format-2 log's documents to its chain (format 3), as the runtime does on opening it.

    Records stay as written; a seal record appended after them binds their documents and
    gives the log its id. A log that is not intact is refused, unchanged. Exit 0, 1 refused.
    """
    path = db_path(db, project_dir)
    try:
        refuse_not_a_file(path)
        if not path.is_file():
            raise UsageError(f"no evidence log at {path}", next_step="pass --db PATH to the runtime's log")
        log_identity(path)  # a file that holds no evidence log is not made into one
        with EvidenceLog(path) as log:
            rules, records = log.rules, log.count()
    except ReconError as error:
        fail(error)
        return
    sealed = f"; records 1..{rules.legacy_end} sealed by record {rules.legacy_end + 1}" if rules.legacy_end else ""
    click.echo(f"evidence log {path}: format 3, log {rules.log_id}, {records} records{sealed}")


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
@click.option(
    "--last",
    "last",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="How many records (1 to 100000).",
)
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


async def _bind(ws: Workspace, archive: Archive, config: AwsConfig, path: Path) -> BindReport:
    from reconciler.cli.targets import genesys_client  # noqa: PLC0415
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)
    from reconciler.providers.genesys.recordings import organization_id  # noqa: PLC0415
    from reconciler.runtime.audio_binding import bind_audio  # noqa: PLC0415

    genesys, _ = genesys_client(ws.project, ws.root)
    aws = AwsClient(config)
    try:
        org_id = await organization_id(genesys)
        with EvidenceLog(path) as log:
            return await bind_audio(log, aws, archive.bucket, archive.region, org_id)
    finally:
        await aws.aclose()
        await genesys.aclose()


@evidence.command("bind-audio")
@_db_option
@_project_option
@click.option("--bucket", "bucket_name", type=NAME, help="The ArchiveBucket's metadata.name (default: the only one).")
@with_vars
def bind_audio_command(
    db: str | None,
    project_dir: str,
    bucket_name: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Append the archived audio's SHA-256 to each stamped call's evidence.

    One `audio_archived` record per call whose audio the export put in the archive, binding
    the audio to the snapshot attached at call start. Calls not archived yet stay awaiting;
    audio that does not hash to its metadata is reported and not bound (exit 2). Idempotent.
    """
    path = db_path(db, project_dir)
    try:
        refuse_not_a_file(path)
        if not path.is_file():
            raise UsageError(f"no evidence log at {path}", next_step="run `recon runtime` first, or pass --db PATH")
        ws, archive, config = archive_access(
            project_dir, bucket_name, var_assignments, var_files, "the archived audio cannot be read"
        )
        report = run_async(_bind(ws, archive, config, path))
    except ReconError as error:
        fail(error)
        return
    click.echo(
        f"{len(report.bound)} call(s) bound to their archived audio in {path}; "
        f"{len(report.awaiting)} awaiting export; {len(report.mismatched)} with audio not matching its metadata"
    )
    for conversation, why in report.mismatched:
        click.echo(f"  ! {conversation}: {why}")
    sys.exit(EXIT_CHANGES if report.mismatched else EXIT_OK)
