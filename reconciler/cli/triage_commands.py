"""`recon triage`: a reviewer's tags on capture-verification findings.

    recon triage set KEY --tag TAG --note TEXT [--by NAME] [--db PATH] [--project-dir DIR]
    recon triage clear KEY --note TEXT [--by NAME] [--db PATH] [--project-dir DIR]
    recon triage list [--history] [--format table|json] [--db PATH] [--project-dir DIR]

KEY is a finding's key from the verification report: "<verdict>:<cdr_id>", or
"recorded_without_cdr:<recording_id>". TAG is one of missing-recording, missing-cdr (the finding
is confirmed and stays counted), false-positive, test-call, maintenance-window (the finding is
excluded from compliance). `--by` defaults to $USER (or $USERNAME). Every set and clear is
appended to an audit trail that is never rewritten; `list --history` shows it. The store is the
runtime's SQLite file: `--db`, else DIR/.recon/runtime.db. `list` is read-only and does not
create the file. Exit 0 on success, 1 on an error (bad key, tag, note or reviewer; a clear of
an untagged key; an unusable store).

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import ONE_LINE, PROSE, cli, fail
from reconciler.errors import ReconError, UsageError
from reconciler.runtime.sqlite_store import DEFAULT_DB
from reconciler.runtime.verification.triage import Triage, TriageEvent, TriageStore, TriageTag, parse_key

CLEARED = "(cleared)"

_db_option = click.option("--db", type=click.Path(dir_okay=False), help=f"The runtime store (default {DEFAULT_DB}).")
_project_option = click.option("--project-dir", type=click.Path(file_okay=False), default=".", show_default=True)
_note_option = click.option("--note", type=PROSE, required=True, help="Why (an auditor reads it).")
_by_option = click.option("--by", "reviewer", type=ONE_LINE, help="The reviewer (default $USER or $USERNAME).")


def store_path(db: str | None, project_dir: str) -> Path:
    return Path(db) if db else Path(project_dir) / DEFAULT_DB


def reviewer_name(given: str | None) -> str:
    """--by, else the environment's user, else a UsageError asking for --by."""
    name = given or os.environ.get("USER") or os.environ.get("USERNAME")
    if not name:
        raise UsageError("no reviewer: neither USER nor USERNAME is set", next_step="name the reviewer with --by NAME")
    return name


@cli.group("triage")
def triage_group() -> None:
    """Tag capture-verification findings (confirmed, or excluded from compliance)."""


@triage_group.command("set", short_help="Tag a finding (replaces its current tag).")
@click.argument("key")
@click.option("--tag", required=True, type=click.Choice([t.value for t in TriageTag]), help="The conclusion.")
@_note_option
@_by_option
@_db_option
@_project_option
def set_command(key: str, tag: str, note: str, reviewer: str | None, db: str | None, project_dir: str) -> None:
    """Tag the finding KEY, e.g. not_recorded:CDR-1234 (replaces its current tag)."""
    try:
        parse_key(key)
        name = reviewer_name(reviewer)
        with TriageStore(store_path(db, project_dir)) as store:
            triage = store.set(key, tag, note=note, reviewer=name)
    except ReconError as error:
        fail(error)
        return
    click.echo(f"{triage.key} tagged {triage.tag.value} by {triage.reviewer}")


@triage_group.command("clear")
@click.argument("key")
@_note_option
@_by_option
@_db_option
@_project_option
def clear_command(key: str, note: str, reviewer: str | None, db: str | None, project_dir: str) -> None:
    """Clear the tag of the finding KEY (the trail keeps it)."""
    try:
        parse_key(key)
        name = reviewer_name(reviewer)
        with TriageStore(store_path(db, project_dir)) as store:
            store.clear(key, note=note, reviewer=name)
    except ReconError as error:
        fail(error)
        return
    click.echo(f"{key} cleared by {name}")


@triage_group.command("list")
@click.option("--history", is_flag=True, help="Every set and clear, oldest first, instead of the current tags.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@_db_option
@_project_option
def list_command(history: bool, output_format: str, db: str | None, project_dir: str) -> None:
    """The current triage tags (or, with --history, the whole trail)."""
    path = store_path(db, project_dir)
    rows: list[dict[str, Any]] = []
    if path.exists():
        try:
            with TriageStore(path) as store:
                rows = [_event_json(e) for e in store.history()] if history else _current_json(store.current())
        except ReconError as error:
            fail(error)
            return
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        click.echo("no triage tags")
    else:
        click.echo(render_table(rows), nl=False)


def _current_json(current: dict[str, Triage]) -> list[dict[str, Any]]:
    return [
        {"key": t.key, "tag": t.tag.value, "excludes": t.excludes, "reviewer": t.reviewer, "at": t.at, "note": t.note}
        for t in current.values()
    ]


def _event_json(event: TriageEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "key": event.key,
        "tag": None if event.tag is None else event.tag.value,
        "reviewer": event.reviewer,
        "at": event.at,
        "note": event.note,
    }


def render_table(rows: list[dict[str, Any]]) -> str:
    """KEY TAG REVIEWER AT NOTE, one row per tag (or event); a note's line breaks become spaces."""
    header = ("KEY", "TAG", "REVIEWER", "AT", "NOTE")
    body = [
        (row["key"], row["tag"] or CLEARED, row["reviewer"], row["at"], " ".join(str(row["note"]).split()))
        for row in rows
    ]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]]
    return "\n".join(lines) + "\n"
