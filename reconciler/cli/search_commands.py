"""`recon search`: the auditor's question over the market data attached to calls.

    recon search TERM... [--from DAY] [--to DAY] [--db PATH] [--project-dir DIR]
                 [--format table|json|csv] [-o FILE] [--heads | --heads-dir DIR]

e.g. `recon search 'market_snapshot.commodity=Natural_Gas_Hub' --from 2026-07-01 --to
2026-09-30`: the calls that started in the period (UTC days, inclusive) whose attached
snapshot satisfies every term (grammar in reconciler.runtime.search). The whole log is
verified first, by the same function as `recon evidence verify` (with the same --heads /
--heads-dir), and every document of the period is checked against the record that binds it:
one that no longer matches is listed as `tampered`, one that is gone as `missing`, whatever
the terms. The summary says how many documents of the period the chain binds and how many
were read, and names the chain's first break. Exit 2 when anything is not intact, 0
otherwise (also when nothing matched), 1 on an error. Read-only.

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler import csvsafe
from reconciler.cli.common import DAY, check_period, cli, fail, with_vars
from reconciler.cli.evidence_commands import heads_for, heads_options
from reconciler.errors import EXIT_CHANGES, EXIT_OK, ReconError, UsageError
from reconciler.runtime.evidence import DEFAULT_DB, refuse_not_a_file
from reconciler.runtime.search import INSTRUMENTS, Hit, SearchResult, Term, parse_terms, search

FIXED = ("timestamp_utc", "source_provider", INSTRUMENTS)


def slots(hits: list[Hit]) -> list[str]:
    """The instrument keys any hit's snapshot has, in first-seen order."""
    seen: dict[str, None] = {}
    for hit in hits:
        snapshot = hit.to_json()["marketSnapshot"]
        if isinstance(snapshot, dict):
            seen.update({key: None for key in snapshot if key not in FIXED})
    return list(seen)


def _value(snapshot: Any, key: str) -> str:
    if not isinstance(snapshot, dict) or key not in snapshot:
        return ""
    instrument = (snapshot.get(INSTRUMENTS) or {}).get(key)
    return f"{snapshot[key]} ({instrument})" if instrument else str(snapshot[key])


def summary(result: SearchResult, terms: list[Term]) -> list[str]:
    """What was read and whether the log is intact (the table's last lines)."""
    query = " AND ".join(term.text for term in terms)
    matched = len(result.hits) - result.tampered - result.missing
    line = (
        f"{matched} call(s) match {query} ({result.scanned} of the {result.bound} stamped call(s) the chain binds "
        "in the period read)"
    )
    problems = [
        f"{n} document(s) {what}" for n, what in ((result.tampered, "TAMPERED"), (result.missing, "MISSING")) if n
    ]
    if problems:
        line += "; " + ", ".join(problems)
    lines = [line]
    chain = result.chain
    if chain is not None and chain.broken is not None:
        lines.append(
            f"evidence log TAMPERED at seq {chain.broken.seq}: {chain.broken.kind}: {chain.broken.detail} "
            f"({chain.records} records): run `recon evidence verify`"
        )
    elif chain is not None:
        lines.append(f"evidence log intact: {chain.records} records, {chain.documents} documents bound")
    elif problems:
        lines.append("run `recon evidence verify`")
    return lines


def render_table(result: SearchResult, keys: list[str], terms: list[Term]) -> str:
    header = ("CALL STARTED", "CONVERSATION", "STATUS", "SNAPSHOT AT", "PROVIDER", *keys, "INTEGRITY")
    rows = []
    for hit in result.hits:
        snapshot = hit.to_json()["marketSnapshot"]
        rows.append(
            (
                hit.call_started,
                hit.conversation_id,
                hit.status,
                str((snapshot or {}).get("timestamp_utc", "")),
                str((snapshot or {}).get("source_provider", "")),
                *(_value(snapshot, key) for key in keys),
                hit.integrity,
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join([*lines, *summary(result, terms)]) + "\n"


def render_csv(result: SearchResult, keys: list[str]) -> str:
    """One row per hit, through the one spreadsheet-safe writer (reconciler.csvsafe): a
    value from a feed or the platform that starts like a formula is guarded, numbers stay
    numbers."""
    header = [
        "call_started",
        "conversation_id",
        "recording_id",
        "status",
        "timestamp_utc",
        "source_provider",
        *(column for key in keys for column in (f"{key}", f"{key}.instrument")),
        "audio_sha256",
        "integrity",
    ]
    rows = []
    for hit in result.hits:
        snapshot = hit.to_json()["marketSnapshot"] or {}
        instruments = snapshot.get(INSTRUMENTS) or {}
        rows.append(
            [
                hit.call_started,
                hit.conversation_id,
                hit.recording_id,
                hit.status,
                snapshot.get("timestamp_utc", ""),
                snapshot.get("source_provider", ""),
                *(cell for key in keys for cell in (snapshot.get(key, ""), instruments.get(key, ""))),
                hit.audio_sha256 or "",
                hit.integrity,
            ]
        )
    return csvsafe.render(header, rows)


@cli.command("search")
@click.argument("terms", nargs=-1, required=True)
@click.option("--from", "first", type=DAY, help="First day (UTC) of call starts.")
@click.option("--to", "last", type=DAY, help="Last day (UTC), inclusive.")
@click.option("--db", type=click.Path(dir_okay=False), help=f"The evidence store (default {DEFAULT_DB}).")
@click.option("--project-dir", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option("--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("-o", "output", type=click.Path(dir_okay=False), help="Write the result to FILE.")
@heads_options
@with_vars
def search_command(
    terms: tuple[str, ...],
    first: dt.date | None,
    last: dt.date | None,
    db: str | None,
    project_dir: str,
    output_format: str,
    output: str | None,
    use_heads: bool,
    bucket_name: str | None,
    heads_prefix: str,
    heads_dir: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Find stamped calls by their market snapshot, e.g. 'market_snapshot.commodity=Natural_Gas_Hub'."""
    path = Path(db) if db else Path(project_dir) / DEFAULT_DB
    try:
        parsed = parse_terms(terms)
        check_period(first, last)
        refuse_not_a_file(path)
        if not path.is_file():
            raise UsageError(f"no evidence store at {path}", next_step="pass --db PATH (default .recon/runtime.db)")
        heads = heads_for(
            path, use_heads, heads_dir, project_dir, bucket_name, heads_prefix, var_assignments, var_files
        )
        result = search(path, parsed, first, last, heads.heads if heads is not None else None)
    except ReconError as error:
        fail(error)
        return
    keys = slots(result.hits)
    if output_format == "json":
        text = json.dumps(
            {
                "query": [t.text for t in parsed],
                "from": first.isoformat() if first else None,
                "to": last.isoformat() if last else None,
                "bound": result.bound,
                "scanned": result.scanned,
                "tampered": result.tampered,
                "missing": result.missing,
                "intact": result.intact,
                "chain": result.chain.to_json() if result.chain else None,
                "calls": [hit.to_json() for hit in result.hits],
            },
            indent=2,
            ensure_ascii=False,
        )
        text += "\n"
    elif output_format == "csv":
        text = render_csv(result, keys)
    else:
        text = render_table(result, keys, parsed)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{len(result.hits)} call(s) written to {output}", err=True)
    else:
        click.echo(text, nl=False)
    if output_format == "csv":  # the CSV holds rows only: what was read, and the chain, go to stderr
        for line in summary(result, parsed):
            click.echo(line, err=True)
    sys.exit(EXIT_OK if result.intact else EXIT_CHANGES)
