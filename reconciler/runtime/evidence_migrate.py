"""Create the evidence log's tables, or upgrade a format-2 log to format 3, when a writer
opens the runtime's SQLite file.

`prepare(db, path)` runs in one `BEGIN IMMEDIATE` transaction (two processes opening one file
cannot both create or upgrade it; a crash leaves the file as it was):

- no `evidence` table: create format 3 with a new log id (`uuid4().hex`) and legacy_end 0,
  so record 1 will chain to `genesis(log_id)`;
- format 3: read its identity; a damaged one (no row, two rows, not recon's) is refused
  (nothing can be appended to a log whose chain rules are unknown);
- format 2 (no `evidence_log`; format 1 had no `documents` table either): the log is
  verified first with the format-2 rules and refused, unchanged, when it is not intact
  (upgrading would seal the tampering in). Then the records are kept exactly as written, the
  document columns are filled from the documents table (for search; these rows are bound by
  the seal, not by their own hash), the identity is created with legacy_end = the last
  record, and one `sealed` record is appended after it: its document lists [seq, call start]
  of every document those records kept, with the new log id, so a format-2 document deleted
  later is detected like any other. Heads published before the upgrade (keyed by seq only,
  not by log) are no longer checked: the heads published from then on cover every record.

Called by: reconciler.runtime.evidence.EvidenceLog.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import uuid
from pathlib import Path

from reconciler.errors import ReconError
from reconciler.runtime.evidence_chain import FORMAT_2, SEALED, LogRules, VerifyReport, seal_document, utc_text
from reconciler.runtime.evidence_store import (
    CREATE_DOCUMENTS,
    CREATE_EVIDENCE,
    CREATE_IDENTITY,
    INDEXES,
    SCHEMA_VERSION,
    build_record,
    check_version,
    insert_record,
    last_record,
    lenient,
    read_rules,
    tables,
)
from reconciler.runtime.evidence_verify import read_only, walk_connection


def precheck(path: Path) -> None:
    """Before the file is opened for writing (which switches it to WAL mode): refuse a
    format-2 log that is not intact, read-only, so that a refused upgrade changes no byte."""
    if not path.is_file():
        return
    with read_only(path) as db:
        try:
            names = tables(db)
            if "evidence" in names and "evidence_log" not in names:
                _refuse_unless_intact(walk_connection(db, FORMAT_2, None), path)
        except sqlite3.DatabaseError:
            return  # not a database: opening it for writing says so


def prepare(db: sqlite3.Connection, path: Path) -> LogRules:
    """Create or upgrade the log in `db` (see the module docstring); its rules."""
    db.execute("BEGIN IMMEDIATE")
    try:
        check_version(db, str(path))
        names = tables(db)
        if "evidence" not in names:
            _create(db)
        elif "evidence_log" not in names:
            _upgrade(db, path, names)
        rules = read_rules(db, str(path))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if rules.problem:
        raise ReconError(
            f"{path}: {rules.problem}: nothing can be appended to it",
            next_step="keep the file as found and run `recon evidence verify`; move it aside to start a new log",
        )
    return rules


def _refuse_unless_intact(report: VerifyReport, path: Path) -> None:
    if report.broken is None:
        return
    broken = report.broken
    raise ReconError(
        f"{path} is an evidence log of format 2 that is not intact (TAMPERED at seq {broken.seq}: "
        f"{broken.kind}: {broken.detail}), so it cannot be upgraded to format 3",
        next_step=(
            "keep the file as found (do not repair it) and run `recon evidence verify`; to stamp calls again, "
            "move it aside (e.g. rename it runtime.db.tampered) and recon runtime starts a new log"
        ),
    )


def _identity(db: sqlite3.Connection, legacy_end: int) -> str:
    log_id = uuid.uuid4().hex
    db.execute(CREATE_IDENTITY)
    db.execute(
        "INSERT INTO evidence_log (id, created_at, legacy_end) VALUES (?, ?, ?)",
        (log_id, utc_text(dt.datetime.now(dt.UTC)), legacy_end),
    )
    return log_id


def _finish(db: sqlite3.Connection) -> None:
    for statement in INDEXES:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _create(db: sqlite3.Connection) -> None:
    db.execute(CREATE_EVIDENCE)
    db.execute(CREATE_DOCUMENTS)
    _identity(db, 0)
    _finish(db)


def _upgrade(db: sqlite3.Connection, path: Path, names: set[str]) -> None:
    if "documents" not in names:
        db.execute(CREATE_DOCUMENTS)
    lenient(db)
    try:
        _refuse_unless_intact(walk_connection(db, FORMAT_2, None), path)
    finally:
        db.text_factory = str
    db.execute("ALTER TABLE evidence ADD COLUMN document_sha256 TEXT NULL")
    db.execute("ALTER TABLE evidence ADD COLUMN call_started TEXT NULL")
    db.execute(
        "UPDATE evidence SET document_sha256 = snapshot_sha256, "
        "call_started = (SELECT d.call_started FROM documents d WHERE d.seq = evidence.seq) "
        "WHERE seq IN (SELECT seq FROM documents)"
    )
    last = last_record(db)
    legacy_end = last.seq if last else 0
    log_id = _identity(db, legacy_end)
    if last is not None:
        documents = {int(seq): str(started) for seq, started in db.execute("SELECT seq, call_started FROM documents")}
        seal = seal_document(log_id, legacy_end, documents)
        digest = hashlib.sha256(seal).hexdigest()
        now = utc_text(dt.datetime.now(dt.UTC))
        record = build_record(legacy_end + 1, last.hash, "", "", digest, None, SEALED, now, digest, now)
        insert_record(db, record, seal.decode())
    _finish(db)
