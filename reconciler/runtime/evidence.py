"""The runtime's append-only, hash-chained evidence log in an embedded SQLite store.

Every attachment the runtime makes (a market-data snapshot stamped on a recorded call, or
the `data_fetch_failed` marker when the feed did not answer) appends one record; the record
format and the chain are in reconciler.runtime.evidence_chain (re-exported here). Chain
heads are published to the Object-Locked archive bucket (reconciler.runtime.evidence_heads)
so that deleting the log's tail or rewriting it wholesale is detected too.

Store: one SQLite file (default `.recon/runtime.db` under the project), WAL mode, table
`evidence(seq INTEGER PRIMARY KEY, conversation_id, recording_id, snapshot_sha256,
audio_sha256 NULL, status, recorded_at, prev_hash, hash)` and, for the auditor's search
(reconciler.runtime.search), `documents(seq PRIMARY KEY, conversation_id, call_started,
document)`: the exact canonical JSON whose SHA-256 the record holds, written in the same
transaction (a document is checked against its record when read; it is not part of the
chain, so the chain stays small). `PRAGMA user_version = 2` (a version-1 file simply gains
the documents table).
`EvidenceLog` holds one connection behind a lock; each append is one `BEGIN IMMEDIATE`
transaction that reads the current head inside the transaction, so two processes appending
to one file still produce one chain. `synchronous=NORMAL` (the default here) commits without
an fsync per append: a power cut may lose the last appends, never break the chain;
`synchronous="FULL"` fsyncs each.

`verify(path)` opens the file read-only and walks it (`evidence_chain.walk`).

Heads: `publish_head`, `read_heads`, `HeadPublisher` (from evidence_heads, re-exported).

Called by: the runtime's snapshot injector (append), HeadPublisher, `recon evidence`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ReconError, UsageError
from reconciler.runtime.evidence_chain import (
    GENESIS,
    STATUSES,
    Break,
    ChainHead,
    EvidenceRecord,
    VerifyReport,
    canonical_json,
    chain_hash,
    snapshot_digest,
    walk,
)
from reconciler.runtime.evidence_heads import DEFAULT_PREFIX, HeadPublisher, publish_head, read_heads, read_heads_dir
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
    "VerifyReport",
    "canonical_json",
    "iter_records",
    "publish_head",
    "read_heads",
    "read_heads_dir",
    "read_records",
    "snapshot_digest",
    "utc_text",
    "verify",
    "walk",
]

SCHEMA_VERSION = 2
_COLUMNS = "seq, conversation_id, recording_id, snapshot_sha256, audio_sha256, status, recorded_at, prev_hash, hash"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS evidence (
    seq INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    snapshot_sha256 TEXT NOT NULL,
    audio_sha256 TEXT NULL,
    status TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    call_started TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_start ON documents (call_started);
CREATE INDEX IF NOT EXISTS evidence_by_conversation ON evidence (conversation_id, status);
PRAGMA user_version = {SCHEMA_VERSION};
"""
_HEX64 = re.compile(r"[0-9a-f]{64}")


def utc_text(moment: dt.datetime) -> str:
    """`moment` as the log writes times: UTC, microseconds, `Z` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EvidenceLog:
    """The writable evidence log at `path` (created, with its folder, when absent).

    Thread-safe: one connection, one lock, one transaction per append."""

    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_store(self.path, synchronous, _SCHEMA)
        except sqlite3.DatabaseError as error:
            raise _unreadable(self.path, error) from None

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
        is not), kept for search with `call_started` (default: the record's time)."""
        entry = Entry(conversation_id, recording_id, snapshot_sha256, audio_sha256, status, at, document, call_started)
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[Entry]) -> list[EvidenceRecord]:
        """Append `entries` in order, in one transaction (all or none), chained as if appended
        one by one. The runtime's group commit (evidence_batch) uses this: one commit for
        every record that arrived while the previous commit ran. ValueError (nothing written)
        for an entry `append` would refuse."""
        checked = [(entry, utc_text(entry.at or dt.datetime.now(dt.UTC))) for entry in entries]
        for entry, _ in checked:
            _check(entry)
        stored: list[EvidenceRecord] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                last = db.execute("SELECT seq, hash FROM evidence ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev_hash = (0, GENESIS) if last is None else (int(last[0]), str(last[1]))
                for entry, recorded_at in checked:
                    seq += 1
                    record = _insert(db, entry, seq, prev_hash, recorded_at)
                    prev_hash = record.hash
                    stored.append(record)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return stored

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, GENESIS) when the log is empty."""
        record = self.last()
        return (0, GENESIS) if record is None else (record.seq, record.hash)

    def last(self) -> EvidenceRecord | None:
        """The last record, or None when the log is empty."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM evidence ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else _record(row)

    def conversation_ids(self) -> set[str]:
        """Every conversation the log has a record for (what a restart must not stamp again)."""
        with self._lock:
            return {str(row[0]) for row in self._db.execute("SELECT DISTINCT conversation_id FROM evidence")}

    def awaiting_audio(self) -> list[tuple[EvidenceRecord, str]]:
        """Each call's stamping record (attached or data_fetch_failed, the last per
        conversation) with no `audio_archived` record yet, and its call start (UTC text)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join('e.' + c.strip() for c in _COLUMNS.split(','))}, "
                "coalesce(d.call_started, e.recorded_at) FROM evidence e LEFT JOIN documents d ON d.seq = e.seq "
                "WHERE e.status != 'audio_archived' AND e.seq = (SELECT max(seq) FROM evidence x "
                "WHERE x.conversation_id = e.conversation_id AND x.status != 'audio_archived') "
                "AND NOT EXISTS (SELECT 1 FROM evidence a WHERE a.conversation_id = e.conversation_id "
                "AND a.status = 'audio_archived') ORDER BY e.seq"
            ).fetchall()
        return [(_record(row[:-1]), str(row[-1])) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM evidence").fetchone()[0])

    def records(self, from_seq: int = 1, limit: int | None = None) -> list[EvidenceRecord]:
        """Records with seq ≥ `from_seq`, in seq order (at most `limit`)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM evidence WHERE seq >= ? ORDER BY seq LIMIT ?",
                (from_seq, -1 if limit is None else limit),
            ).fetchall()
        return [_record(row) for row in rows]

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


def _check(entry: Entry) -> None:
    if entry.status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {entry.status!r}")
    for name, digest in (("snapshot_sha256", entry.snapshot_sha256), ("audio_sha256", entry.audio_sha256)):
        if digest is not None and not _HEX64.fullmatch(digest):
            raise ValueError(f"{name} must be 64 lowercase hex characters, not {digest!r}")
    if entry.document is not None and hashlib.sha256(entry.document).hexdigest() != entry.snapshot_sha256:
        raise ValueError("document is not what snapshot_sha256 is the digest of")


def _insert(db: sqlite3.Connection, entry: Entry, seq: int, prev_hash: str, recorded_at: str) -> EvidenceRecord:
    """Insert one record (and its document) after `prev_hash`, inside the caller's transaction."""
    record = EvidenceRecord(
        seq,
        entry.conversation_id,
        entry.recording_id,
        entry.snapshot_sha256,
        entry.audio_sha256,
        entry.status,
        recorded_at,
        prev_hash,
        chain_hash(
            prev_hash,
            {
                "seq": seq,
                "conversation_id": entry.conversation_id,
                "recording_id": entry.recording_id,
                "snapshot_sha256": entry.snapshot_sha256,
                "audio_sha256": entry.audio_sha256,
                "status": entry.status,
                "recorded_at": recorded_at,
            },
        ),
    )
    db.execute(
        f"INSERT INTO evidence ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        ),
    )
    if entry.document is not None:
        started = utc_text(entry.call_started) if entry.call_started else recorded_at
        db.execute(
            "INSERT INTO documents (seq, conversation_id, call_started, document) VALUES (?, ?, ?, ?)",
            (seq, entry.conversation_id, started, entry.document.decode()),
        )
    return record


def read_records(path: str | Path, *, last: int | None = None) -> list[EvidenceRecord]:
    """Every record of the log at `path` in seq order (or the `last` N), read-only.

    UsageError when the file does not exist; ReconError when it is not an evidence log."""
    with _ReadOnly(Path(path)) as db:
        try:
            if last is None:
                rows: Iterable[Any] = db.execute(f"SELECT {_COLUMNS} FROM evidence ORDER BY seq")
            else:
                rows = reversed(
                    db.execute(f"SELECT {_COLUMNS} FROM evidence ORDER BY seq DESC LIMIT ?", (last,)).fetchall()
                )
            return [_record(row) for row in rows]
        except sqlite3.DatabaseError as error:
            raise _unreadable(Path(path), error) from None


def verify(path: str | Path, heads: Iterable[ChainHead] = ()) -> VerifyReport:
    """Walk the log at `path` (read-only) and cross-check `heads` (published chain heads)."""
    return walk(read_records(path), heads)


class _ReadOnly:
    """A read-only connection to an existing log file (never creates one)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise UsageError(
                f"no evidence log at {path}",
                next_step="pass --db PATH to the runtime's log (default .recon/runtime.db under --project-dir)",
            )
        self.path = path
        try:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.DatabaseError as error:
            raise _unreadable(path, error) from None

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *_: object) -> None:
        self.db.close()


def _unreadable(path: Path, error: sqlite3.DatabaseError) -> ReconError:
    return ReconError(
        f"{path} is not a readable evidence log ({error})",
        next_step="check the path; a log the runtime wrote has an `evidence` table",
    )


def _text(value: object) -> str:
    # Anything but text where text was written cannot match its hash: keep it visibly foreign.
    return value if isinstance(value, str) else f"<{type(value).__name__}:{value!r}>"


def _record(row: Any) -> EvidenceRecord:
    seq, conversation_id, recording_id, snapshot, audio, status, recorded_at, prev_hash, digest = row
    return EvidenceRecord(
        seq=int(seq),
        conversation_id=_text(conversation_id),
        recording_id=_text(recording_id),
        snapshot_sha256=_text(snapshot),
        audio_sha256=None if audio is None else _text(audio),
        status=_text(status),
        recorded_at=_text(recorded_at),
        prev_hash=_text(prev_hash),
        hash=_text(digest),
    )


def iter_records(log: EvidenceLog, batch: int = 1000) -> Iterator[EvidenceRecord]:
    """Every record of an open log in seq order, read in batches."""
    start = 1
    while True:
        chunk = log.records(from_seq=start, limit=batch)
        if not chunk:
            return
        yield from chunk
        start = chunk[-1].seq + 1
