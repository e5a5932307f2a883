"""The walk that verifies an evidence log: chain, documents and published heads (pure).

`Walker` is fed the records in seq order, each with the document stored for it (if any), and
stops at the first break of the chain (a document's problem is kept and the walk goes on);
`finish` adds what only the whole log shows (published heads beyond
its end, documents no record claims) and returns the VerifyReport. Reading is elsewhere
(reconciler.runtime.evidence_verify streams rows from SQLite; `walk` here takes lists), so the
rules are unit- and property-tested over tables. The break reported is the one at the lowest
seq (on a tie: the chain's, then the document's, then a head's: the more specific first).

Records, in seq order, expecting seq 1, 2, ... each linked to the previous record's hash
(record 1 to the log's genesis, reconciler.runtime.evidence_chain):

- a seq missing → `deleted` at the first missing seq; a seq twice → `duplicated`;
- content not matching its own hash:
    - it matches when hashed with another seq W (intact, but written at W): `duplicated`
      when the record at W is the same record, else `reordered` when its prev_hash is a hash
      still in the log (or the genesis), else `deleted` (records were removed and the rest
      renumbered);
    - no seq makes it match → `edited`;
- content matching but prev_hash not the predecessor's hash (a predecessor rewritten with a
  recomputed hash) → `reordered` at the predecessor when the hash it was chained to belongs
  to another record of the log, else `edited` there (at record 1: the log's identity changed).

Documents (format 3: the record's hashed content names its document's SHA-256 and call start;
an upgraded log's format-2 records: the seal record does): a claimed document that is absent
→ `document-missing`; one that does not hash to the claim, or whose copies of the
conversation id and call start differ, or that is stored twice → `document-altered`; a
document no record claims → `document-unbound`. A format-2 log (not upgraded) binds no
document: a stored one must hash to its record's snapshot digest, a lost one is not seen.

Heads of this log: one whose hash differs from the record at its seq → `head-mismatch`
there (rewritten at or before it); one beyond the log's end → `head-mismatch` at the first
seq past the end (the tail was deleted, or the whole file rolled back to an older copy).
Heads of other logs are counted and ignored. Records after the last published head are
`unanchored`: a tail cut there cannot be seen until the next head is published.

Called by: reconciler.runtime.evidence_verify and evidence_migrate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.runtime.evidence_chain import (
    GENESIS,
    LOG_ID,
    SEALED,
    Break,
    BreakKind,
    ChainHead,
    EvidenceRecord,
    LogRules,
    VerifyReport,
)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What the documents table holds for one seq: the SHA-256 of its text and its copies of
    the record's conversation id and call start; `copies` > 1 when stored more than once."""

    digest: str
    conversation_id: str
    call_started: str
    copies: int = 1


class Lookup(Protocol):
    """Random access to the whole log, used only to explain a break."""

    @property
    def last_seq(self) -> int: ...

    def seq_of_hash(self, value: str, not_seq: int) -> int | None:
        """The seq of a record (other than `not_seq`) whose stored hash is `value`."""

    def record_at(self, seq: int) -> EvidenceRecord | None: ...


def claim(row: EvidenceRecord, rules: LogRules, stored: StoredDocument | None) -> tuple[str, str] | None:
    """(SHA-256, call start) of the document `row` is bound to keep, or None."""
    if rules.is_legacy(row.seq):
        if rules.sealed is None:  # format 2, not upgraded: whatever is stored, unbound
            return None if stored is None else (row.snapshot_sha256, stored.call_started)
        started = rules.sealed.get(row.seq)
        return None if started is None else (row.snapshot_sha256, started)
    if not row.claims_document:
        return None
    return (row.document_sha256 or "", row.call_started or "")


def document_problem(
    row: EvidenceRecord, rules: LogRules, stored: StoredDocument | None
) -> tuple[BreakKind, str] | None:
    """What is wrong with `row`'s document, or None (search flags its hits with this too)."""
    seq = row.seq
    if rules.is_legacy(seq) and rules.sealed is not None and row.claims_document:
        bound = claim(row, rules, stored)
        if bound != (row.document_sha256, row.call_started):
            return "edited", f"record {seq}'s document columns differ from what the seal record binds"
    bound = claim(row, rules, stored)
    if bound is None:
        if stored is None:
            return None
        return "document-unbound", f"a document is stored for record {seq}, which keeps none"
    if stored is None:
        return "document-missing", f"record {seq}'s document is gone from the documents table"
    if stored.copies > 1:
        return "document-altered", f"record {seq}'s document is stored {stored.copies} times"
    if stored.digest != bound[0]:
        return "document-altered", f"record {seq}'s document no longer hashes to the SHA-256 the record binds"
    if stored.call_started != bound[1] or stored.conversation_id != row.conversation_id:
        return "document-altered", f"record {seq}'s document row names another call start or conversation"
    return None


class Walker:
    """Feed records in seq order (`feed`), then `finish`. `heads`: the published heads given
    (None: no heads were asked for)."""

    def __init__(self, rules: LogRules, lookup: Lookup, heads: Sequence[ChainHead] | None = None) -> None:
        self.rules, self.lookup = rules, lookup
        given = list(heads or ())
        self.heads = sorted((h for h in given if h.log == rules.log_id), key=lambda head: head.seq)
        self.heads_given = heads is not None
        self.foreign = len(given) - len(self.heads)
        self.expected, self.prev = 1, rules.first_prev
        self.last: EvidenceRecord | None = None
        self.documents = self.checked = self.anchored = self._head = 0
        self.broken: Break | None = None
        self.stopped = False
        """Set at a break of the chain (or of a head): later records cannot be vouched for."""
        if rules.problem:
            self._stop(Break(1, "edited", rules.problem))
        elif rules.log_id is not None and not LOG_ID.fullmatch(rules.log_id):
            self._stop(Break(1, "edited", "the log's id is not one recon makes (32 hex characters)"))

    def _found(self, broken: Break) -> None:
        if self.broken is None or broken.seq < self.broken.seq:
            self.broken = broken

    def _stop(self, broken: Break) -> bool:
        self._found(broken)
        self.stopped = True
        return False

    def feed(self, row: EvidenceRecord, stored: StoredDocument | None) -> bool:
        """Check one record; False once the chain is broken (stop feeding). A document's
        problem is kept (the lowest seq wins) and the walk goes on: the chain is whole, and
        the records after it are still checked."""
        if self.stopped:
            return False
        chained = self._chain(row) or self._seal(row)
        if chained is not None:
            return self._stop(chained)
        problem = document_problem(row, self.rules, stored)
        if problem is not None:
            self._found(Break(row.seq, *problem))
        elif claim(row, self.rules, stored) is not None:
            self.documents += 1
        self.expected, self.prev = row.seq + 1, row.hash
        head = self._head_at(row)
        if head is not None:
            return self._stop(head)
        self.last = row
        return True

    def finish(self, records: int, end: EvidenceRecord | None, unclaimed: Iterable[int] = ()) -> VerifyReport:
        """The report, once every record was fed (or the walk stopped): `records` rows in the
        log, `end` its last record, `unclaimed` the seqs of stored documents that have no
        record at all."""
        last_seq = self.last.seq if self.last else 0
        if not self.stopped and self._head < len(self.heads):
            beyond = self.heads[-1]
            self._found(
                Break(
                    last_seq + 1,
                    "head-mismatch",
                    f"a chain head was published at seq {beyond.seq} but the log ends at seq {last_seq}: records "
                    f"{last_seq + 1}..{beyond.seq} were deleted (or the file is an older copy of the log)",
                )
            )
            self.checked += len(self.heads) - self._head
        orphan = min(unclaimed, default=None)
        if orphan is not None:
            self._found(
                Break(orphan, "document-unbound", f"a document is stored for seq {orphan}, which has no record")
            )
        broken = self.broken
        return VerifyReport(
            records=records,
            head_seq=end.seq if end else 0,
            head_hash=end.hash if end else self.rules.first_prev,
            heads_checked=self.checked,
            broken=broken,
            log_id=self.rules.log_id,
            documents=self.documents,
            documents_bound=self.rules.documents_bound,
            unanchored=max(0, last_seq - self.anchored) if self.heads_given and broken is None else 0,
            foreign_heads=self.foreign,
            verified_through=last_seq,
        )

    def _head_at(self, row: EvidenceRecord) -> Break | None:
        while self._head < len(self.heads) and self.heads[self._head].seq <= row.seq:
            head = self.heads[self._head]
            self._head += 1
            self.checked += 1
            if head.hash != row.hash or head.seq != row.seq:
                return Break(
                    head.seq,
                    "head-mismatch",
                    f"record {head.seq} differs from the chain head published for it: the log was rewritten at "
                    f"or before seq {head.seq}",
                )
            self.anchored = row.seq
        return None

    def _seal(self, row: EvidenceRecord) -> Break | None:
        end = self.rules.legacy_end
        if row.seq == end + 1 and self.rules.sealed is not None:
            if self.rules.seal_problem:
                return Break(row.seq, "edited", self.rules.seal_problem)
            if row.status != SEALED:
                return Break(row.seq, "edited", f"record {row.seq} should seal records 1..{end} and does not")
        elif row.status == SEALED:
            return Break(row.seq, "edited", f"record {row.seq} is a seal, and no format-2 records end before it")
        return None

    def _chain(self, row: EvidenceRecord) -> Break | None:
        rules, seq = self.rules, row.seq
        if seq != self.expected:
            if seq < 1:
                return Break(seq, "edited", f"seq {seq} is not a position in the log (it starts at 1): a row was added")
            if seq < self.expected:
                return Break(seq, "duplicated", f"seq {seq} appears twice")
            gap = f"record {self.expected}" if seq == self.expected + 1 else f"records {self.expected}..{seq - 1}"
            return Break(self.expected, "deleted", f"{gap} missing: the log jumps from {self.expected - 1} to {seq}")
        if rules.hash_of(row) != row.hash:
            written_at = self._written_at(row)
            if written_at is None:
                return Break(seq, "edited", f"record {seq}'s content does not match its hash")
            original = self.lookup.record_at(written_at)
            if original is not None and original.hash == row.hash:
                return Break(seq, "duplicated", f"record {seq} is a copy of record {written_at}")
            if row.prev_hash not in (GENESIS, rules.first_prev) and self.lookup.seq_of_hash(row.prev_hash, seq) is None:
                return Break(
                    seq,
                    "deleted",
                    f"record {seq} was written as record {written_at} and the record it was chained to "
                    "is gone: records were deleted and the rest renumbered",
                )
            return Break(seq, "reordered", f"record {seq} was written as record {written_at}")
        if row.prev_hash != self.prev:
            holder = self.lookup.seq_of_hash(row.prev_hash, seq)
            if holder is not None:
                return Break(
                    max(seq - 1, 1),
                    "reordered",
                    f"record {seq} was chained to the record now at seq {holder}, not to record {seq - 1}",
                )
            if seq == 1:
                return Break(
                    1,
                    "edited",
                    "record 1 does not start from this log's genesis: the log's id was changed, or the records "
                    "come from another log",
                )
            return Break(
                seq - 1,
                "edited",
                f"record {seq - 1} was rewritten with a recomputed hash: record {seq} was chained to another",
            )
        return None

    def _written_at(self, row: EvidenceRecord) -> int | None:
        """The seq at which `row`'s content matches its hash, if any but its own: likely
        candidates first (neighbours, 1 when it starts from a genesis), then every seq of the
        log (only ever run for the first broken record)."""
        candidates: list[int] = [row.seq + d for d in (1, -1, 2, -2) if row.seq + d > 0]
        if row.prev_hash in (GENESIS, self.rules.first_prev):
            candidates.insert(0, 1)
        seen: set[int] = {row.seq}
        last: int = self.lookup.last_seq
        order: list[int] = [*candidates, *range(1, last + 2)]
        for seq in order:
            if seq in seen:
                continue
            seen.add(seq)
            if self.rules.hash_of(row, seq) == row.hash:
                return seq
        return None


class ListLookup:
    """`Lookup` over rows in memory."""

    def __init__(self, rows: Sequence[EvidenceRecord]) -> None:
        self._by_seq = {row.seq: row for row in rows}
        self._by_hash: dict[str, list[int]] | None = None
        self.last_seq = max(self._by_seq, default=0)

    def seq_of_hash(self, value: str, not_seq: int) -> int | None:
        if self._by_hash is None:
            self._by_hash = {}
            for row in self._by_seq.values():
                self._by_hash.setdefault(row.hash, []).append(row.seq)
        return next((seq for seq in self._by_hash.get(value, ()) if seq != not_seq), None)

    def record_at(self, seq: int) -> EvidenceRecord | None:
        return self._by_seq.get(seq)


def walk(
    rows: Iterable[EvidenceRecord],
    heads: Sequence[ChainHead] | None = None,
    *,
    rules: LogRules | None = None,
    documents: Mapping[int, StoredDocument] | None = None,
) -> VerifyReport:
    """Verify `rows` (any order; sorted by seq here) with their `documents` (by seq) against
    `heads`. Default rules: a log of no id whose record 1 starts from GENESIS and binds its
    documents in its hashed content."""
    ordered = sorted(rows, key=lambda row: row.seq)
    stored = dict(documents or {})
    walker = Walker(rules or LogRules(log_id=None), ListLookup(ordered), heads)
    for row in ordered:
        if not walker.feed(row, stored.get(row.seq)):
            break
    present = {row.seq for row in ordered}
    return walker.finish(len(ordered), ordered[-1] if ordered else None, (seq for seq in stored if seq not in present))
