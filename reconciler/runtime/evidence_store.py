"""The evidence log's tables in the runtime's SQLite file: how rows are written and read.

Format 3 (`PRAGMA user_version = 3`):

    evidence(seq INTEGER PRIMARY KEY, conversation_id, recording_id, snapshot_sha256,
             audio_sha256 NULL, status, recorded_at, prev_hash, hash,
             document_sha256 NULL, call_started NULL)      -- the chained records
    documents(seq PRIMARY KEY, conversation_id, call_started, document)
             -- the exact canonical JSON a record binds (its SHA-256 and call start are in
             -- the record's hashed content), for the auditor's search
    evidence_log(id, created_at, legacy_end)               -- one row: the log's identity

A format-2 file (before issue 17) has no evidence_log and no document columns; it is read as
it is (`FORMAT_2` rules) and upgraded by reconciler.runtime.evidence_migrate when opened for
writing. Which rules apply is read from the tables present, not from user_version (which an
edit could lower); user_version only refuses a file written by a newer recon.

Reading for verification decodes text leniently (invalid UTF-8 becomes U+FFFD, so it no longer
matches its hash instead of aborting the read) and shows any non-text value as a foreign
value (`<int:7>`): a tampered row is reported, never a crash.

Called by: reconciler.runtime.evidence (appends), evidence_verify, evidence_migrate and search.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from typing import Any

from reconciler import jsonsafe
from reconciler.errors import ReconError
from reconciler.runtime.evidence_chain import (
    FORMAT_2,
    SEAL_FORMAT,
    EvidenceRecord,
    LogRules,
    chain_hash,
)
from reconciler.runtime.evidence_walk import StoredDocument

SCHEMA_VERSION = 3
RECORD_COLUMNS = (
    "seq, conversation_id, recording_id, snapshot_sha256, audio_sha256, status, recorded_at, prev_hash, hash, "
    "document_sha256, call_started"
)
_LEGACY_COLUMNS = (
    "seq, conversation_id, recording_id, snapshot_sha256, audio_sha256, status, recorded_at, prev_hash, hash"
)
CREATE_EVIDENCE = """CREATE TABLE evidence (
    seq INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    snapshot_sha256 TEXT NOT NULL,
    audio_sha256 TEXT NULL,
    status TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    document_sha256 TEXT NULL,
    call_started TEXT NULL
)"""
CREATE_DOCUMENTS = """CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    call_started TEXT NOT NULL,
    document TEXT NOT NULL
)"""
CREATE_IDENTITY = "CREATE TABLE evidence_log (id TEXT NOT NULL, created_at TEXT NOT NULL, legacy_end INTEGER NOT NULL)"
INDEXES = ("CREATE INDEX IF NOT EXISTS evidence_by_conversation ON evidence (conversation_id, status)",)
"""bind-audio's per-conversation lookups. No index by call start: a search walks the whole
chain first anyway, so one more B-tree per append (the runtime's hot path) would buy nothing."""
MAX_SEAL_BYTES = 1 << 30
"""A seal lists [seq, call start] per format-2 document (about 40 bytes each)."""


def build_record(
    seq: int,
    prev_hash: str,
    conversation_id: str,
    recording_id: str,
    snapshot_sha256: str,
    audio_sha256: str | None,
    status: str,
    recorded_at: str,
    document_sha256: str | None,
    call_started: str | None,
) -> EvidenceRecord:
    """A format-3 record at `seq` after `prev_hash`, with its hash."""
    content: dict[str, Any] = {
        "seq": seq,
        "conversation_id": conversation_id,
        "recording_id": recording_id,
        "snapshot_sha256": snapshot_sha256,
        "audio_sha256": audio_sha256,
        "status": status,
        "recorded_at": recorded_at,
    }
    if document_sha256 is not None or call_started is not None:
        content["document"] = {"sha256": document_sha256, "call_started": call_started}
    digest = chain_hash(prev_hash, content)
    return EvidenceRecord(
        seq,
        conversation_id,
        recording_id,
        snapshot_sha256,
        audio_sha256,
        status,
        recorded_at,
        prev_hash,
        digest,
        document_sha256,
        call_started,
    )


def insert_record(db: sqlite3.Connection, record: EvidenceRecord, document: str | None) -> None:
    """Insert `record` and the document it binds, inside the caller's transaction."""
    db.execute(
        f"INSERT INTO evidence ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.seq,
            record.conversation_id,
            record.recording_id,
            record.snapshot_sha256,
            record.audio_sha256,
            record.status,
            record.recorded_at,
            record.prev_hash,
            record.hash,
            record.document_sha256,
            record.call_started,
        ),
    )
    if document is not None:
        db.execute(
            "INSERT INTO documents (seq, conversation_id, call_started, document) VALUES (?, ?, ?, ?)",
            (record.seq, record.conversation_id, record.call_started, document),
        )


def _text(value: object) -> str:
    # Anything but text where text was written cannot match its hash: keep it visibly foreign.
    return value if isinstance(value, str) else f"<{type(value).__name__}:{value!r}>"


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)


def to_record(row: Any) -> EvidenceRecord:
    """A record from a row of RECORD_COLUMNS (or the format-2 nine)."""
    seq, conversation_id, recording_id, snapshot, audio, status, recorded_at, prev_hash, digest, *document = row
    document_sha256, call_started = [*document, None, None][:2]
    return EvidenceRecord(
        seq=int(seq),
        conversation_id=_text(conversation_id),
        recording_id=_text(recording_id),
        snapshot_sha256=_text(snapshot),
        audio_sha256=_optional(audio),
        status=_text(status),
        recorded_at=_text(recorded_at),
        prev_hash=_text(prev_hash),
        hash=_text(digest),
        document_sha256=_optional(document_sha256),
        call_started=_optional(call_started),
    )


def document_digest(text: object) -> str:
    """SHA-256 of a stored document's text as the runtime wrote it (UTF-8)."""
    if isinstance(text, bytes):
        return hashlib.sha256(text).hexdigest()
    return hashlib.sha256(_text(text).encode("utf-8", "replace")).hexdigest()


def lenient(db: sqlite3.Connection) -> sqlite3.Connection:
    """`db` reading text as UTF-8 with replacement (see the module docstring)."""
    db.text_factory = lambda data: data.decode("utf-8", "replace")
    return db


def tables(db: sqlite3.Connection) -> set[str]:
    return {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def has_document_columns(db: sqlite3.Connection) -> bool:
    return "document_sha256" in {str(row[1]) for row in db.execute("PRAGMA table_info(evidence)")}


def columns(db: sqlite3.Connection, prefix: str = "") -> str:
    """The record columns this file has (format 2: NULL for the document ones)."""
    if has_document_columns(db):
        return ", ".join(prefix + name.strip() for name in RECORD_COLUMNS.split(","))
    return ", ".join(prefix + name.strip() for name in _LEGACY_COLUMNS.split(",")) + ", NULL, NULL"


def check_version(db: sqlite3.Connection, where: str) -> int:
    """The file's user_version; ReconError when a newer recon wrote it."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ReconError(
            f"{where} is an evidence log of format {version}, newer than this recon reads ({SCHEMA_VERSION})",
            next_step="use the recon version that wrote it (or a newer one)",
        )
    return version


def read_rules(db: sqlite3.Connection, where: str) -> LogRules:
    """How the log in `db` is chained: its identity and, for an upgraded log, its seal."""
    check_version(db, where)
    names = tables(db)
    if "evidence" not in names:
        raise ReconError(
            f"{where} has no evidence log (no `evidence` table)",
            next_step="check the path; recon runtime writes the log to .recon/runtime.db",
        )
    if "evidence_log" not in names:
        if has_document_columns(db):
            return LogRules(log_id="", problem="the log's identity (table evidence_log) was removed")
        return FORMAT_2
    rows = db.execute("SELECT id, legacy_end FROM evidence_log").fetchall()
    if len(rows) != 1:
        return LogRules(log_id="", problem=f"the log has {len(rows)} identities (evidence_log rows), not one")
    log_id, legacy_end = rows[0]
    if not isinstance(log_id, str) or not isinstance(legacy_end, int) or legacy_end < 0:
        return LogRules(log_id="", problem="the log's identity (evidence_log) is not what recon writes")
    if legacy_end == 0:
        return LogRules(log_id=log_id)
    sealed, problem = _read_seal(db, log_id, legacy_end)
    return LogRules(log_id=log_id, legacy_end=legacy_end, sealed=sealed, seal_problem=problem)


def _read_seal(db: sqlite3.Connection, log_id: str, legacy_end: int) -> tuple[dict[int, str], str]:
    """The seal's binding of the format-2 documents, and why the seal record is not one (""
    when it is). An unusable seal falls back to the document columns of the format-2 rows (so
    each lost document is still named); the walk reports the seal itself as broken."""
    fallback = {
        int(seq): _text(started)
        for seq, started in db.execute(
            "SELECT seq, call_started FROM evidence WHERE seq <= ? AND call_started IS NOT NULL", (legacy_end,)
        )
    }
    row = db.execute(
        "SELECT e.document_sha256, d.document FROM evidence e LEFT JOIN documents d ON d.seq = e.seq WHERE e.seq = ?",
        (legacy_end + 1,),
    ).fetchone()
    seal = f"record {legacy_end + 1} (the seal of records 1..{legacy_end})"
    if row is None:
        return fallback, f"{seal} is gone"
    if row[1] is None or document_digest(row[1]) != row[0]:
        return fallback, ""  # the walk names the seal's document missing or altered, at its seq
    try:
        data = jsonsafe.loads(row[1], what="the seal", max_bytes=MAX_SEAL_BYTES)
        documents = data["documents"]
        if data["seal"] != SEAL_FORMAT or data["log"] != log_id or data["legacy_end"] != legacy_end:
            return fallback, f"{seal} seals another log or another range"
        bound = {int(seq): str(started) for seq, started in documents}
    except (ValueError, KeyError, TypeError):
        return fallback, f"{seal}: its document is not a seal"
    return bound, ""


def iter_rows(db: sqlite3.Connection) -> Iterator[tuple[EvidenceRecord, StoredDocument | None]]:
    """Every record in seq order with the document stored for it (a document stored twice
    comes once, with its copies counted)."""
    if "documents" in tables(db):
        query = (
            f"SELECT {columns(db, 'e.')}, d.seq, d.conversation_id, d.call_started, d.document "
            "FROM evidence e LEFT JOIN documents d ON d.seq = e.seq ORDER BY e.seq"
        )
    else:  # format 1 kept no documents
        query = f"SELECT {columns(db, 'e.')}, NULL, NULL, NULL, NULL FROM evidence e ORDER BY e.seq"
    cursor = db.execute(query)
    pending: tuple[EvidenceRecord, StoredDocument | None] | None = None
    for row in cursor:
        record = to_record(row[:11])
        stored = None if row[11] is None else StoredDocument(document_digest(row[14]), _text(row[12]), _text(row[13]))
        if pending is not None and pending[0] == record and pending[1] is not None and stored is not None:
            pending = (record, StoredDocument(stored.digest, stored.conversation_id, stored.call_started, 2))
            continue
        if pending is not None:
            yield pending
        pending = (record, stored)
    if pending is not None:
        yield pending


def unclaimed_documents(db: sqlite3.Connection) -> list[int]:
    """The lowest seq of a stored document that has no record at all ([] when none)."""
    if "documents" not in tables(db):
        return []
    row = db.execute(
        "SELECT d.seq FROM documents d LEFT JOIN evidence e ON e.seq = d.seq WHERE e.seq IS NULL ORDER BY d.seq LIMIT 1"
    ).fetchone()
    return [] if row is None else [int(row[0])]


def last_record(db: sqlite3.Connection) -> EvidenceRecord | None:
    row = db.execute(f"SELECT {columns(db)} FROM evidence ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else to_record(row)


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM evidence").fetchone()[0])


class SqlLookup:
    """reconciler.runtime.evidence_walk.Lookup over the file (queries run only on a break)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @property
    def last_seq(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(seq), 0) FROM evidence").fetchone()[0])

    def seq_of_hash(self, value: str, not_seq: int) -> int | None:
        row = self.db.execute(
            "SELECT seq FROM evidence WHERE hash = ? AND seq != ? LIMIT 1", (value, not_seq)
        ).fetchone()
        return None if row is None else int(row[0])

    def record_at(self, seq: int) -> EvidenceRecord | None:
        row = self.db.execute(f"SELECT {columns(self.db)} FROM evidence WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else to_record(row)
