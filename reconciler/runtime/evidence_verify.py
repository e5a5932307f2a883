"""Verify an evidence log file: the one verification `recon evidence verify` and `recon search`
both run, so they can never disagree about the same database.

`verify(path, heads)` opens the file read-only (never creating one), reads how it is chained
(reconciler.runtime.evidence_store.read_rules), streams every record with its stored
document through the pure Walker (reconciler.runtime.evidence_walk) until the first break,
and adds the documents no record claims and the published `heads` (None: not checked).
`verify_connection` does the same on an open connection (the upgrade runs it inside its
transaction). `log_identity(path)` reads only the log's id (to find its published heads).

Memory stays flat whatever the log's size: rows are streamed, and the whole log is looked at
again only to explain a break.

Called by: reconciler.runtime.evidence (re-exported), evidence_migrate, search and the
`recon evidence` commands.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import ReconError, UsageError
from reconciler.runtime.evidence_chain import ChainHead, LogRules, VerifyReport
from reconciler.runtime.evidence_store import (
    SqlLookup,
    count,
    iter_rows,
    last_record,
    lenient,
    read_rules,
    unclaimed_documents,
)
from reconciler.runtime.evidence_walk import Walker


def verify_connection(
    db: sqlite3.Connection, heads: Sequence[ChainHead] | None = None, *, where: str = "the evidence log"
) -> VerifyReport:
    """Walk the log in `db` (see the module docstring)."""
    rules = read_rules(db, where)
    return walk_connection(db, rules, heads)


def walk_connection(db: sqlite3.Connection, rules: LogRules, heads: Sequence[ChainHead] | None) -> VerifyReport:
    walker = Walker(rules, SqlLookup(db), heads)
    for row, stored in iter_rows(db):
        if not walker.feed(row, stored):
            break
    return walker.finish(count(db), last_record(db), unclaimed_documents(db))


def verify(path: str | Path, heads: Sequence[ChainHead] | None = None) -> VerifyReport:
    """Walk the log at `path` read-only, and check `heads` (published chain heads; None:
    not checked). UsageError when there is no file; ReconError when it is not a log."""
    with read_only(Path(path)) as db:
        try:
            return verify_connection(db, heads, where=str(path))
        except sqlite3.DatabaseError as error:
            raise unreadable(Path(path), error) from None


def log_identity(path: str | Path) -> LogRules:
    """How the log at `path` is chained (its id: None for a format-2 log), read-only."""
    with read_only(Path(path)) as db:
        try:
            return read_rules(db, str(path))
        except sqlite3.DatabaseError as error:
            raise unreadable(Path(path), error) from None


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an existing log file (never creates one), reading text
    leniently (reconciler.runtime.evidence_store.lenient)."""
    refuse_not_a_file(path)
    if not path.is_file():
        raise UsageError(
            f"no evidence log at {path}",
            next_step="pass --db PATH to the runtime's log (default .recon/runtime.db under --project-dir)",
        )
    try:
        db = lenient(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))
    except sqlite3.DatabaseError as error:
        raise unreadable(path, error) from None
    try:
        yield db
    finally:
        db.close()


def refuse_not_a_file(path: Path) -> None:
    """UsageError when `path` exists but is not a regular file (a directory, a named pipe,
    a device: SQLite would block on a pipe or read a device without end)."""
    if path.exists() and not path.is_file():
        raise UsageError(
            f"{path} is not a regular file, so it is not an evidence log",
            next_step="pass --db PATH to the runtime's log file (default .recon/runtime.db under --project-dir)",
        )


def unreadable(path: Path, error: sqlite3.DatabaseError) -> ReconError:
    return ReconError(
        f"{path} is not a readable evidence log ({error})",
        next_step="check the path; a log the runtime wrote has an `evidence` table",
    )
