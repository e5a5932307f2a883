"""The runtime's append-only, hash-chained evidence log in an embedded SQLite store.

Every attachment the runtime makes (a market-data snapshot stamped on a recorded call, or
the `data_fetch_failed` marker when the feed did not answer) appends one record, and the
document attached (the exact canonical JSON whose SHA-256 the record holds) is kept beside
it for the auditor's search. The record format, the log's identity and the chain are in
reconciler.runtime.evidence_chain; the record's hashed content names its document's SHA-256
and call start, so deleting, editing or swapping a document is detected like editing a
record (reconciler.runtime.evidence_walk). Chain heads are published to the Object-Locked
archive bucket under the log's id (reconciler.runtime.evidence_heads), so deleting the log's
tail, rolling the file back to an older copy or rewriting it wholesale is detected too.

Store: one SQLite file (default `.recon/runtime.db` under the project), WAL mode, the tables
of reconciler.runtime.evidence_store (format 3). Opening a file creates the tables, or
upgrades a format-2 log in place (reconciler.runtime.evidence_migrate).
`EvidenceLog` holds one connection behind a lock; each append is one `BEGIN IMMEDIATE`
transaction that reads the current head inside the transaction, so two processes appending
to one file still produce one chain. `synchronous=NORMAL` (the default here) commits without
an fsync per append: a power cut may lose the last appends, never break the chain;
`synchronous="FULL"` fsyncs each.

`verify(path, heads)` (reconciler.runtime.evidence_verify) opens the file read-only and walks
records, documents and heads: `recon evidence verify` and `recon search` both call it.

Heads: `publish_head`, `read_heads`, `HeadPublisher` (from evidence_heads, re-exported).

Called by: the runtime's snapshot injector (append), HeadPublisher, `recon evidence`, `recon search`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ReconError
from reconciler.runtime.evidence_chain import (
    CALL_STATUSES_SQL,
    GENESIS,
    HEX64,
    SEALED,
    STATUSES,
    Break,
    ChainHead,
    EvidenceRecord,
    LogRules,
    VerifyReport,
    canonical_json,
    snapshot_digest,
    utc_text,
)
from reconciler.runtime.evidence_heads import (
    DEFAULT_PREFIX,
    HeadPublisher,
    PublishedHeads,
    publish_head,
    read_heads,
    read_heads_dir,
)
from reconciler.runtime.evidence_migrate import precheck, prepare
from reconciler.runtime.evidence_store import (
    RECORD_COLUMNS,
    build_record,
    check_version,
    columns,
    insert_record,
    to_record,
)
from reconciler.runtime.evidence_verify import log_identity, read_only, refuse_not_a_file, unreadable, verify
from reconciler.runtime.evidence_walk import StoredDocument, walk
from reconciler.runtime.sqlite_store import DEFAULT_DB, open_store

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_PREFIX",
    "GENESIS",
    "Break",
    "ChainHead",
    "Entry",
    "EvidenceLog",
    "EvidenceRecord",
    "HeadPublisher",
    "LogRules",
    "PublishedHeads",
    "StoredDocument",
    "VerifyReport",
    "canonical_json",
    "iter_records",
    "log_identity",
    "publish_head",
    "read_heads",
    "read_heads_dir",
    "read_records",
    "refuse_not_a_file",
    "snapshot_digest",
    "utc_text",
    "verify",
    "walk",
]


class EvidenceLog:
    """The writable evidence log at `path` (created, with its folder, when absent; a format-2
    log is upgraded). Thread-safe: one connection, one lock, one transaction per append."""

    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        refuse_not_a_file(self.path)
        precheck(self.path)
        try:
            self._db = open_store(self.path, synchronous, "")
        except sqlite3.DatabaseError as error:
            raise unreadable(self.path, error) from None
        try:
            self.rules = prepare(self._db, self.path)
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise unreadable(self.path, error) from None
        except BaseException:
            self._db.close()
            raise
        self._written: tuple[int, str] | None = None
        """(seq, hash) of the last record this object appended: it must still be there."""

    @property
    def log_id(self) -> str:
        """The log's identity (names its published chain heads)."""
        return str(self.rules.log_id)

    def append(
        self,
        conversation_id: str,
        recording_id: str,
        snapshot_sha256: str,
        audio_sha256: str | None = None,
        status: str = "attached",
        at: dt.datetime | None = None,
        *,
        document: bytes | None = None,
        call_started: dt.datetime | None = None,
    ) -> EvidenceRecord:
        """Append one record (chained to the current head) and return it as stored.

        `document`: the canonical JSON whose SHA-256 is `snapshot_sha256` (ValueError when it
        is not), kept for search with `call_started` (default: the record's time); the record
        binds both."""
        entry = Entry(conversation_id, recording_id, snapshot_sha256, audio_sha256, status, at, document, call_started)
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[Entry]) -> list[EvidenceRecord]:
        """Append `entries` in order, in one transaction (all or none), chained as if appended
        one by one. The runtime's group commit (evidence_batch) uses this: one commit for
        every record that arrived while the previous commit ran. ValueError (nothing written)
        for an entry `append` would refuse."""
        checked = [(entry, utc_text(entry.at or dt.datetime.now(dt.UTC)), _check(entry)) for entry in entries]
        stored: list[EvidenceRecord] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                last = db.execute("SELECT seq, hash FROM evidence ORDER BY seq DESC LIMIT 1").fetchone()
                self._check_written(db, last)
                seq, prev_hash = (0, self.rules.first_prev) if last is None else (int(last[0]), str(last[1]))
                for entry, recorded_at, document in checked:
                    seq += 1
                    started = None
                    if document is not None:
                        started = utc_text(entry.call_started) if entry.call_started else recorded_at
                    record = build_record(
                        seq,
                        prev_hash,
                        entry.conversation_id,
                        entry.recording_id,
                        entry.snapshot_sha256,
                        entry.audio_sha256,
                        entry.status,
                        recorded_at,
                        None if document is None else entry.snapshot_sha256,
                        started,
                    )
                    insert_record(db, record, document)
                    prev_hash = record.hash
                    stored.append(record)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if stored:
                self._written = (stored[-1].seq, stored[-1].hash)
        return stored

    def _check_written(self, db: sqlite3.Connection, last: Any) -> None:
        """ReconError when the last record this object appended is gone or changed: the log
        was cut or rewritten behind the running writer (appending would anchor the thinned
        log in the next published head). Another process appending after it is fine."""
        if self._written is None:
            return
        seq, digest = self._written
        if last is not None and int(last[0]) == seq and last[1] == digest:
            return
        if last is not None and int(last[0]) > seq:
            row = db.execute("SELECT hash FROM evidence WHERE seq = ?", (seq,)).fetchone()
            if row is not None and row[0] == digest:
                return
        raise ReconError(
            f"{self.path}: record {seq}, which this runtime appended, is gone or changed: the evidence log was cut "
            "or rewritten behind it, so nothing more is appended to it",
            next_step="keep the file as found and run `recon evidence verify --heads`; start the runtime on a new "
            "log (move the file aside) to stamp calls again",
        )

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, the log's genesis) when the log is empty."""
        record = self.last()
        return (0, self.rules.first_prev) if record is None else (record.seq, record.hash)

    def last(self) -> EvidenceRecord | None:
        """The last record, or None when the log is empty."""
        with self._lock:
            row = self._db.execute(f"SELECT {RECORD_COLUMNS} FROM evidence ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else to_record(row)

    def conversation_ids(self) -> set[str]:
        """Every conversation the log has a record for (what a restart must not stamp again)."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT conversation_id FROM evidence WHERE status != ?", (SEALED,))
            return {str(row[0]) for row in rows}

    def awaiting_audio(self) -> list[tuple[EvidenceRecord, str]]:
        """Each call's stamping record (attached, data_fetch_failed or instruments_dropped,
        the last per conversation) with no `audio_archived` record yet, and its call start
        (UTC text)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {columns(self._db, 'e.')}, coalesce(e.call_started, e.recorded_at) FROM evidence e "
                f"WHERE e.status IN {CALL_STATUSES_SQL} AND e.seq = (SELECT max(seq) FROM evidence x "
                f"WHERE x.conversation_id = e.conversation_id AND x.status IN {CALL_STATUSES_SQL}) "
                "AND NOT EXISTS (SELECT 1 FROM evidence a WHERE a.conversation_id = e.conversation_id "
                "AND a.status = 'audio_archived') ORDER BY e.seq"
            ).fetchall()
        return [(to_record(row[:-1]), str(row[-1])) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM evidence").fetchone()[0])

    def records(self, from_seq: int = 1, limit: int | None = None) -> list[EvidenceRecord]:
        """Records with seq ≥ `from_seq`, in seq order (at most `limit`)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {RECORD_COLUMNS} FROM evidence WHERE seq >= ? ORDER BY seq LIMIT ?",
                (from_seq, -1 if limit is None else limit),
            ).fetchall()
        return [to_record(row) for row in rows]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> EvidenceLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Entry:
    """One record to append (what `EvidenceLog.append` takes): the log adds seq, time and chain."""

    conversation_id: str
    recording_id: str
    snapshot_sha256: str
    audio_sha256: str | None = None
    status: str = "attached"
    at: dt.datetime | None = None
    document: bytes | None = None
    call_started: dt.datetime | None = None


def _check(entry: Entry) -> str | None:
    """ValueError when `entry` cannot be appended; its document as text (None: none)."""
    if entry.status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {entry.status!r}")
    for name, digest in (("snapshot_sha256", entry.snapshot_sha256), ("audio_sha256", entry.audio_sha256)):
        if digest is not None and not HEX64.fullmatch(digest):
            raise ValueError(f"{name} must be 64 lowercase hex characters, not {digest!r}")
    if entry.document is None:
        return None
    if hashlib.sha256(entry.document).hexdigest() != entry.snapshot_sha256:
        raise ValueError("document is not what snapshot_sha256 is the digest of")
    try:
        return entry.document.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("document must be UTF-8 (canonical JSON)") from None


def read_records(path: str | Path, *, last: int | None = None) -> list[EvidenceRecord]:
    """Every record of the log at `path` in seq order (or the `last` N), read-only.

    UsageError when the file does not exist; ReconError when it is not an evidence log."""
    with read_only(Path(path)) as db:
        try:
            check_version(db, str(path))
            if last is None:
                rows: Iterable[Any] = db.execute(f"SELECT {columns(db)} FROM evidence ORDER BY seq")
            else:
                rows = reversed(
                    db.execute(f"SELECT {columns(db)} FROM evidence ORDER BY seq DESC LIMIT ?", (last,)).fetchall()
                )
            return [to_record(row) for row in rows]
        except sqlite3.DatabaseError as error:
            raise unreadable(Path(path), error) from None


def iter_records(log: EvidenceLog, batch: int = 1000) -> Iterator[EvidenceRecord]:
    """Every record of an open log in seq order, read in batches."""
    start = 1
    while True:
        chunk = log.records(from_seq=start, limit=batch)
        if not chunk:
            return
        yield from chunk
        start = chunk[-1].seq + 1
