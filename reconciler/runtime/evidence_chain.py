"""The evidence log's record format and hash chain (pure): what a record binds, how it is
hashed, the log's identity, chain heads and the verification report.

A record binds one attachment: conversation id, recording id, SHA-256 of the canonical
snapshot JSON, the audio's SHA-256 when the archive has it, a status, a UTC time and (format
3) the document kept for search. It is chained to its predecessor:

    hash = hex(SHA-256( prev_hash as 64 ASCII hex chars  ||  canonical_json(content) ))
    content = {"seq", "conversation_id", "recording_id", "snapshot_sha256",
               "audio_sha256" (null when unknown), "status", "recorded_at"}
              + "document": {"sha256", "call_started"}   when the record keeps a document

`seq` is inside the hashed content, so a record moved to another position no longer matches
its hash there, yet still matches it at the position it was written at: that is how the walk
tells a reordered or duplicated record from an edited one (reconciler.runtime.evidence_walk).

The log's identity. Each log has an id (`log_id`, 32 hex characters, made when the database
is created) that names its chain heads in the archive (two logs publishing to one bucket keep
apart) and is bound into the chain: record 1's prev_hash is `genesis(log_id)`, so a log whose
id was changed no longer starts from its genesis.

Format 2 (before issue 17) had no id and no document binding: record 1 chained to GENESIS (64
zeros) and a document's loss went unnoticed. Such a log is upgraded in place when the runtime
opens it (reconciler.runtime.evidence_migrate): its records stay as written (hashed without
the document), and a `sealed` record appended after them binds their documents and the new
id (`LogRules.legacy_end` is the last format-2 record).

Called by: the other reconciler.runtime.evidence* modules and the `recon evidence` commands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

GENESIS = "0" * 64
"""prev_hash of record 1 of a format-2 log."""
STATUSES = ("attached", "data_fetch_failed", "instruments_dropped", "audio_archived")
"""What an append may record. attached / data_fetch_failed / instruments_dropped (the feed
answered but every instrument value was withheld, e.g. for PII): what was put on a call at its
start; audio_archived: a later record binding the call's archived audio (its SHA-256) to the
same snapshot digest."""
CALL_STATUSES = STATUSES[:3]
"""The statuses of a call's stamping record (what search lists and audio binds to)."""
CALL_STATUSES_SQL = "(" + ", ".join(f"'{status}'" for status in CALL_STATUSES) + ")"
"""CALL_STATUSES as an SQL list, for `status IN ...` (constants, never user input)."""
SEALED = "sealed"
"""The status of the record that binds a format-2 log's documents when it is upgraded."""
SEAL_FORMAT = "recon.evidence-seal/1"
LOG_ID = re.compile(r"[0-9a-f]{32}")
HEX64 = re.compile(r"[0-9a-f]{64}")

BreakKind = Literal[
    "edited",
    "deleted",
    "reordered",
    "duplicated",
    "document-missing",
    "document-altered",
    "document-unbound",
    "head-mismatch",
]


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""One encoder for every canonical_json (json.dumps with options builds a new one per call:
a third of the cost of hashing a record, on the runtime's hot path)."""


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON of `value`: keys sorted, no whitespace, non-ASCII kept as
    UTF-8 (ensure_ascii off), NaN/Infinity refused (ValueError).

    Floats are written as Python's `repr` (the shortest text that round-trips, e.g. `0.1`,
    `1e+22`, `1.0`): stable across Python versions and machines, but not RFC 8785 (JCS),
    which writes `1.0` as `1` and `1e+22` as `1e22`. A verifier in another language must
    format floats the same way; integers are plain decimal."""
    return _CANONICAL.encode(value).encode("utf-8")


def snapshot_digest(snapshot: Any) -> str:
    """Hex SHA-256 of the canonical JSON of a market-data snapshot (or any JSON value)."""
    return hashlib.sha256(canonical_json(snapshot)).hexdigest()


def utc_text(moment: dt.datetime) -> str:
    """`moment` as the log writes times: UTC, microseconds, `Z` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def genesis(log_id: str) -> str:
    """prev_hash of record 1 of the format-3 log `log_id`."""
    return hashlib.sha256(b"recon evidence log " + log_id.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One row of the evidence log, as stored. `document_sha256` and `call_started` are the
    document the record keeps for search (None: it keeps none)."""

    seq: int
    conversation_id: str
    recording_id: str
    snapshot_sha256: str
    audio_sha256: str | None
    status: str
    recorded_at: str
    prev_hash: str
    hash: str
    document_sha256: str | None = None
    call_started: str | None = None

    @property
    def claims_document(self) -> bool:
        return self.document_sha256 is not None or self.call_started is not None

    def content(self, seq: int | None = None, *, legacy: bool = False) -> dict[str, Any]:
        """The hashed fields (with `seq` replaced when given: used to find where a moved
        record was written); `legacy`: as format 2 hashed them (no document)."""
        content: dict[str, Any] = {
            "seq": self.seq if seq is None else seq,
            "conversation_id": self.conversation_id,
            "recording_id": self.recording_id,
            "snapshot_sha256": self.snapshot_sha256,
            "audio_sha256": self.audio_sha256,
            "status": self.status,
            "recorded_at": self.recorded_at,
        }
        if not legacy and self.claims_document:
            content["document"] = {"sha256": self.document_sha256, "call_started": self.call_started}
        return content

    def computed_hash(self, seq: int | None = None, *, legacy: bool = False) -> str:
        """The hash this record's content chains to (at `seq`, default its own)."""
        return chain_hash(self.prev_hash, self.content(seq, legacy=legacy))

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "prev_hash": self.prev_hash, "hash": self.hash}


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """hex SHA-256(prev_hash ASCII || canonical_json(content))."""
    return hashlib.sha256(prev_hash.encode("ascii", "replace") + canonical_json(content)).hexdigest()


@dataclass(frozen=True, slots=True)
class LogRules:
    """How one log is chained: its id (None for a format-2 log), the last record written in
    format 2 (`legacy_end`: 0 for a log created in format 3, effectively infinite for a
    format-2 log not yet upgraded), and for an upgraded log the seal's binding of those
    records' documents (legacy seq -> call_started; None when there is no seal)."""

    log_id: str | None
    legacy_end: int = 0
    sealed: Mapping[int, str] | None = None
    problem: str = ""
    """Why the log's identity cannot be trusted (reported as a break at seq 1), or ""."""
    seal_problem: str = ""
    """Why the seal record (seq legacy_end + 1) is not one (reported as a break there), or ""."""

    @property
    def format(self) -> int:
        return 2 if self.log_id is None else 3

    @property
    def first_prev(self) -> str:
        """What record 1 must be chained to."""
        return genesis(self.log_id) if self.log_id is not None and self.legacy_end == 0 else GENESIS

    @property
    def documents_bound(self) -> bool:
        """Whether losing a document is detectable: false only while format-2 records are
        not sealed (a format-2 log not upgraded yet)."""
        return self.sealed is not None or self.legacy_end == 0

    def is_legacy(self, seq: int) -> bool:
        return seq <= self.legacy_end

    def hash_of(self, row: EvidenceRecord, seq: int | None = None) -> str:
        at = row.seq if seq is None else seq
        return row.computed_hash(seq, legacy=self.is_legacy(at))


FORMAT_2 = LogRules(log_id=None, legacy_end=sys.maxsize)
"""A log written before issue 17, read as it is (not upgraded)."""


def seal_document(log_id: str, legacy_end: int, documents: Mapping[int, str]) -> bytes:
    """The canonical JSON a seal record keeps: the id given to the upgraded log, its last
    format-2 record, and [seq, call_started] of every document those records kept."""
    return canonical_json(
        {
            "seal": SEAL_FORMAT,
            "log": log_id,
            "legacy_end": legacy_end,
            "documents": [[seq, documents[seq]] for seq in sorted(documents)],
        }
    )


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A published chain head: the log's last record when it was published. `log` is None
    for a head published before heads were keyed by log (format 2). `source` says where it
    was read (not part of its value)."""

    seq: int
    hash: str
    recorded_at: str
    records: int
    log: str | None = None
    source: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "seq": self.seq,
            "hash": self.hash,
            "recorded_at": self.recorded_at,
            "records": self.records,
        }
        if self.log is not None:
            body["log"] = self.log
        return body


@dataclass(frozen=True, slots=True)
class Break:
    """Where the log first fails and how: `seq` is the first position at which the log is
    not what was written."""

    seq: int
    kind: BreakKind
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of walking a log, its documents and its published heads."""

    records: int
    head_seq: int
    head_hash: str
    heads_checked: int
    broken: Break | None
    log_id: str | None = None
    documents: int = 0
    """Documents the chain binds (each checked: present, same hash, same copies)."""
    documents_bound: bool = True
    """False for a format-2 log: a lost document cannot be detected until it is upgraded."""
    unanchored: int = 0
    """Records after the last published head checked (none when no heads were given)."""
    foreign_heads: int = 0
    """Heads given that belong to other logs (ignored)."""
    verified_through: int = 0
    """The last seq the walk vouches for: the chain is whole up to it (the log's last seq
    when no break of the chain was found; a document's problem does not stop the walk)."""

    @property
    def intact(self) -> bool:
        return self.broken is None

    @property
    def format(self) -> int:
        return 3 if self.documents_bound else 2

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "log": self.log_id,
            "format": self.format,
            "records": self.records,
            "documents": self.documents,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "heads_checked": self.heads_checked,
            "unanchored": self.unanchored,
            "verified_through": self.verified_through,
            "break": self.broken.to_json() if self.broken else None,
        }
