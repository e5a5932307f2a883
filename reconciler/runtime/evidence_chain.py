"""The evidence log's record format, its hash chain, and the pure walk that verifies it.

A record binds one attachment: conversation id, recording id, SHA-256 of the canonical
snapshot JSON, the audio's SHA-256 when the archive has it, a status and a UTC time. It is
chained to its predecessor:

    hash = hex(SHA-256( prev_hash as 64 ASCII hex chars  ||  canonical_json(content) ))
    content = {"seq", "conversation_id", "recording_id", "snapshot_sha256",
               "audio_sha256" (null when unknown), "status", "recorded_at"}

The first record's prev_hash is GENESIS (64 zeros). `seq` is inside the hashed content, so a
record moved to another position no longer matches its hash there, yet still matches it at
the position it was written at: that is how `walk` tells a reordered record from an edited
one (see `walk`).

`walk` is I/O-free (a function over rows, so it is unit-tested with tables); SQLite reading
lives in reconciler.runtime.evidence.

Called by: reconciler.runtime.evidence, evidence_heads and the `recon evidence` commands.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

GENESIS = "0" * 64
STATUSES = ("attached", "data_fetch_failed", "instruments_dropped", "audio_archived")
"""attached / data_fetch_failed / instruments_dropped (the feed answered but every instrument
value was withheld, e.g. for PII): what was put on a call at its start; audio_archived: a later
record binding the call's archived audio (its SHA-256) to the same snapshot digest."""

BreakKind = Literal["edited", "deleted", "reordered", "head-mismatch"]


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON of `value`: keys sorted, no whitespace, non-ASCII kept as
    UTF-8 (ensure_ascii off), NaN/Infinity refused (ValueError).

    Floats are written as Python's `repr` (the shortest text that round-trips, e.g. `0.1`,
    `1e+22`, `1.0`): stable across Python versions and machines, but not RFC 8785 (JCS),
    which writes `1.0` as `1` and `1e+22` as `1e22`. A verifier in another language must
    format floats the same way; integers are plain decimal."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def snapshot_digest(snapshot: Any) -> str:
    """Hex SHA-256 of the canonical JSON of a market-data snapshot (or any JSON value)."""
    return hashlib.sha256(canonical_json(snapshot)).hexdigest()


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One row of the evidence log, as stored."""

    seq: int
    conversation_id: str
    recording_id: str
    snapshot_sha256: str
    audio_sha256: str | None
    status: str
    recorded_at: str
    prev_hash: str
    hash: str

    def content(self, seq: int | None = None) -> dict[str, Any]:
        """The hashed fields (with `seq` replaced when given: used to find where a moved
        record was written)."""
        return {
            "seq": self.seq if seq is None else seq,
            "conversation_id": self.conversation_id,
            "recording_id": self.recording_id,
            "snapshot_sha256": self.snapshot_sha256,
            "audio_sha256": self.audio_sha256,
            "status": self.status,
            "recorded_at": self.recorded_at,
        }

    def computed_hash(self, seq: int | None = None) -> str:
        """The hash this record's content chains to (at `seq`, default its own)."""
        return chain_hash(self.prev_hash, self.content(seq))

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "prev_hash": self.prev_hash, "hash": self.hash}


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """hex SHA-256(prev_hash ASCII || canonical_json(content))."""
    return hashlib.sha256(prev_hash.encode("ascii", "replace") + canonical_json(content)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A published chain head: the log's last record when it was published."""

    seq: int
    hash: str
    recorded_at: str
    records: int

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "recorded_at": self.recorded_at, "records": self.records}


@dataclass(frozen=True, slots=True)
class Break:
    """Where the chain first fails and how: `seq` is the first position at which the log is
    not what was written."""

    seq: int
    kind: BreakKind
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of walking a log (and cross-checking published heads)."""

    records: int
    head_seq: int
    head_hash: str
    heads_checked: int
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "records": self.records,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "heads_checked": self.heads_checked,
            "break": self.broken.to_json() if self.broken else None,
        }


def walk(rows: Iterable[EvidenceRecord], heads: Iterable[ChainHead] = ()) -> VerifyReport:
    """Verify the chain `rows` (any order; sorted by seq here) and the published `heads`;
    report the first break.

    In seq order, expecting seq 1, 2, ... each linked to the previous record's hash:

    - a seq missing from the sequence → `deleted` at the first missing seq;
    - content not matching its own hash:
        - it matches when hashed with another seq S (the record is intact, but was written
          at S) and its prev_hash is a hash still in the log (or GENESIS) → `reordered`;
        - the same, but its prev_hash is in no record of the log → `deleted` (records were
          removed and the rest renumbered);
        - no seq makes it match → `edited`;
    - content matching but prev_hash not the predecessor's hash (a predecessor rewritten
      with a recomputed hash) → `reordered` at the predecessor when the hash it was chained
      to belongs to another record of the log, `deleted` when it belongs to none and this is
      the first record, otherwise `edited` at the predecessor;
    - a published head beyond the log's end → `head-mismatch` at the first seq past the end
      (the tail was deleted); a head whose hash differs from the log's record at its seq →
      `head-mismatch` there (rewritten at or before it).

    Of a walk break and a head break, the one at the lower seq is reported (the walk's on a
    tie: it is more specific)."""
    ordered = sorted(rows, key=lambda row: row.seq)
    broken = _walk_break(ordered)
    head_break, checked = _head_break(ordered, sorted(heads, key=lambda head: head.seq))
    if head_break is not None and (broken is None or head_break.seq < broken.seq):
        broken = head_break
    last = ordered[-1] if ordered else None
    return VerifyReport(
        records=len(ordered),
        head_seq=last.seq if last else 0,
        head_hash=last.hash if last else GENESIS,
        heads_checked=checked,
        broken=broken,
    )


def _walk_break(ordered: Sequence[EvidenceRecord]) -> Break | None:
    index: dict[str, int] | None = None

    def where(hash_value: str) -> int | None:  # seq of the record with this stored hash
        nonlocal index
        if index is None:
            index = {row.hash: row.seq for row in ordered}
        return index.get(hash_value)

    expected_seq, prev = 1, GENESIS
    for row in ordered:
        if row.seq != expected_seq:
            if row.seq < expected_seq:
                return Break(row.seq, "edited", f"seq {row.seq} appears twice")
            missing = (
                f"record {expected_seq}" if row.seq == expected_seq + 1 else f"records {expected_seq}..{row.seq - 1}"
            )
            return Break(
                expected_seq, "deleted", f"{missing} missing: the log jumps from {expected_seq - 1} to {row.seq}"
            )
        if row.computed_hash() != row.hash:
            written_at = _written_at(row, ordered)
            if written_at is None:
                return Break(row.seq, "edited", f"record {row.seq}'s content does not match its hash")
            if row.prev_hash != GENESIS and where(row.prev_hash) is None:
                return Break(
                    row.seq,
                    "deleted",
                    f"record {row.seq} was written as record {written_at} and the record it was chained to "
                    "is gone: records were deleted and the rest renumbered",
                )
            return Break(row.seq, "reordered", f"record {row.seq} was written as record {written_at}")
        if row.prev_hash != prev:
            holder = where(row.prev_hash)
            if holder is not None and holder != row.seq:
                return Break(
                    max(row.seq - 1, 1),
                    "reordered",
                    f"record {row.seq} was chained to the record now at seq {holder}, not to record {row.seq - 1}",
                )
            if row.seq == 1:
                return Break(
                    1, "deleted", "record 1 does not start from the genesis hash: earlier records were deleted"
                )
            return Break(
                row.seq - 1,
                "edited",
                f"record {row.seq - 1} was rewritten with a recomputed hash: record {row.seq} was chained to another",
            )
        expected_seq, prev = expected_seq + 1, row.hash
    return None


def _written_at(row: EvidenceRecord, ordered: Sequence[EvidenceRecord]) -> int | None:
    """The seq at which `row`'s content matches its hash, if any but its own: likely
    candidates first (neighbours, the successor of the record it was chained to), then every
    seq of the log (only ever run for the first broken record)."""
    candidates: list[int] = [row.seq + d for d in (1, -1, 2, -2) if row.seq + d > 0]
    if row.prev_hash == GENESIS:
        candidates.insert(0, 1)
    last = ordered[-1].seq if ordered else 0
    seen: set[int] = {row.seq}
    order: list[int] = [*candidates, *range(1, last + 2)]
    for seq in order:
        if seq in seen:
            continue
        seen.add(seq)
        if row.computed_hash(seq) == row.hash:
            return seq
    return None


def _head_break(ordered: Sequence[EvidenceRecord], heads: Sequence[ChainHead]) -> tuple[Break | None, int]:
    by_seq = {row.seq: row.hash for row in ordered} if heads else {}
    last = ordered[-1].seq if ordered else 0
    for checked, head in enumerate(heads, start=1):
        if head.seq > last:
            return Break(
                last + 1,
                "head-mismatch",
                f"a chain head was published at seq {head.seq} but the log ends at seq {last}: "
                f"records {last + 1}..{head.seq} were deleted",
            ), checked
        stored = by_seq.get(head.seq)
        if stored != head.hash:
            what = "is missing" if stored is None else "differs from the chain head published for it"
            return Break(
                head.seq,
                "head-mismatch",
                f"record {head.seq} {what}: the log was rewritten at or before seq {head.seq}",
            ), checked
    return None, len(heads)
