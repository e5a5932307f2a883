"""The auditor's search over what the runtime attached to calls: `recon search`.

    recon search 'market_snapshot.commodity=Natural_Gas_Hub' --from 2026-07-01 --to 2026-09-30

Each stamped call has a document in the evidence store (reconciler.runtime.evidence, table
`documents`): the canonical JSON `{"market_snapshot": {...}, "status": ...}` that was attached
to it, whose SHA-256 and call start the chained evidence record binds. A search first runs the
one verification `recon evidence verify` runs (reconciler.runtime.evidence_verify: the whole
chain, every document, the published heads when given), so the two cannot disagree about a
database. It then reads the records that bind a document of a call started in the period
(the period is the chain's call start, not the documents table's copy), checks each document
against its record with the walk's own check (`evidence_walk.document_problem`), and keeps
those that satisfy every term. A document that is not what its record binds is `tampered`,
one that is gone is `missing`: both are always listed, never silently dropped or shown;
`unverified` marks an intact document whose record lies at or after a break of the chain.
The result says how many documents of the period the chain binds and how many were read.

Terms (all must hold; several may be given):

    PATH OP VALUE     PATH: dotted keys from the document's top (market_snapshot.commodity,
                      status, conversation_id, recording_id); a key containing a dot is quoted:
                      market_snapshot."RDSa.L"
                      OP: = != > >= < <= and ~ (contains, case-insensitive)
    PATH              the key is present and not null

Values compare as numbers when both sides are numbers, otherwise as text, exactly (= is
case-sensitive: EUR/USD and eur/usd are different instruments). An instrument slot
(`market_snapshot.<as>`) also matches by the instrument it holds: the snapshot's `instruments`
map names the symbol behind each value, so `market_snapshot.commodity=Natural_Gas_Hub` finds
the calls whose `commodity` value priced Natural_Gas_Hub (the seeds' question), as
`market_snapshot.commodity>2.4` finds them by price.

`parse_terms` and `Term.matches` are pure; `search` does the read (read-only connection).

Called by: reconciler.cli.search_commands (`recon search`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler import jsonsafe
from reconciler.errors import ReconError, UsageError
from reconciler.runtime.evidence_chain import CALL_STATUSES_SQL, ChainHead, LogRules, VerifyReport
from reconciler.runtime.evidence_store import (
    columns,
    document_digest,
    has_document_columns,
    read_rules,
    tables,
    to_record,
)
from reconciler.runtime.evidence_verify import read_only, refuse_not_a_file, walk_connection
from reconciler.runtime.evidence_walk import StoredDocument, document_problem

Op = Literal["=", "!=", ">", ">=", "<", "<=", "~", "exists"]
_TERM = re.compile(r'^(?P<path>(?:"[^"]*"?|[^=!<>~"])+)(?:(?P<op>!=|>=|<=|=|>|<|~)(?P<value>.*))?$', re.DOTALL)
INSTRUMENTS = "instruments"
MARKET_SNAPSHOT = "market_snapshot"


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: the value at `path` compared with `value` by `op`."""

    path: tuple[str, ...]
    op: Op
    value: str = ""
    text: str = ""
    """The term as written (for messages)."""

    def matches(self, document: Any) -> bool:
        found = [_at(document, self.path)]
        if len(self.path) == 2 and self.path[0] == MARKET_SNAPSHOT and self.op in ("=", "!=", "~"):
            found.append(_at(document, (MARKET_SNAPSHOT, INSTRUMENTS, self.path[1])))
        candidates = [v for v in found if v is not _MISSING and v is not None]
        if self.op == "exists":
            return bool(candidates)
        if self.op == "!=":
            return bool(candidates) and all(not _equal(v, self.value) for v in candidates)
        return any(_compare(v, self.op, self.value) for v in candidates)


def parse_terms(texts: Sequence[str]) -> list[Term]:
    """The terms of a query; UsageError naming the one that cannot be read."""
    if not texts:
        raise UsageError("no search terms", next_step="e.g. recon search 'market_snapshot.commodity=Natural_Gas_Hub'")
    terms = []
    for text in texts:
        found = _TERM.match(text.strip())
        path = _path(found.group("path")) if found else None
        if found is None or not path:
            raise UsageError(
                f"cannot read the search term {text!r}",
                next_step="write PATH=VALUE (or != > >= < <= ~), e.g. market_snapshot.commodity=Natural_Gas_Hub",
            )
        op: Op = found.group("op") or "exists"  # type: ignore[assignment]
        value = found.group("value") or ""
        if op in (">", ">=", "<", "<=") and _number(value) is None:
            raise UsageError(f"{text!r}: {op} compares numbers, and {value!r} is not one", next_step="e.g. price>2.4")
        terms.append(Term(path, op, value, text))
    return terms


Integrity = Literal["ok", "tampered", "missing", "unverified"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One call the search found."""

    seq: int
    conversation_id: str
    call_started: str
    recording_id: str
    status: str
    document: Any
    """The parsed document, or None when it is `tampered` or `missing`."""
    integrity: Integrity
    """ok; tampered (the document is not what its record binds); missing (the record binds
    a document that is gone); unverified (the document is what its record binds, but the
    chain is broken at or before the record, so the record itself cannot be vouched for)."""
    audio_sha256: str | None = None
    """The archived audio's SHA-256, once bound (`recon evidence bind-audio`)."""

    def to_json(self) -> dict[str, Any]:
        snapshot = self.document.get(MARKET_SNAPSHOT) if isinstance(self.document, dict) else None
        return {
            "seq": self.seq,
            "conversationId": self.conversation_id,
            "callStarted": self.call_started,
            "recordingId": self.recording_id,
            "status": self.status,
            "marketSnapshot": snapshot,
            "audioSha256": self.audio_sha256,
            "integrity": self.integrity,
        }


@dataclass(slots=True)
class SearchResult:
    hits: list[Hit] = field(default_factory=list)
    bound: int = 0
    """Stamped calls in the period whose document the chain binds."""
    scanned: int = 0
    """Of those, the documents present and read."""
    tampered: int = 0
    """Documents in the period that are not what their record binds."""
    missing: int = 0
    """Documents in the period that their record binds and that are gone."""
    chain: VerifyReport | None = None
    """The whole log's verification (the one `recon evidence verify` runs)."""

    @property
    def intact(self) -> bool:
        return self.chain is not None and self.chain.intact and not self.tampered and not self.missing


def search(
    path: Path,
    terms: Sequence[Term],
    first: dt.date | None = None,
    last: dt.date | None = None,
    heads: Sequence[ChainHead] | None = None,
) -> SearchResult:
    """The calls that started from `first` to `last` (inclusive UTC days; open when None)
    whose document satisfies every term, in call-start order, and the verification of the
    whole log (with `heads` when given). Tampered and missing documents in the period are
    always returned (flagged), whatever the terms: they cannot be judged."""
    refuse_not_a_file(path)
    if not path.is_file():
        raise UsageError(f"no evidence store at {path}", next_step="pass --db PATH (default .recon/runtime.db)")
    low = f"{first.isoformat()}T00:00:00" if first else ""
    high = f"{(last + dt.timedelta(days=1)).isoformat()}T00:00:00" if last else "9999"
    result = SearchResult()
    with read_only(path) as db:
        try:
            rules = read_rules(db, str(path))
            result.chain = walk_connection(db, rules, heads)
            for hit in _read(db, rules, low, high, result.chain.verified_through):
                result.bound += 1
                result.scanned += hit.integrity != "missing"
                if hit.integrity in ("tampered", "missing"):
                    result.tampered += hit.integrity == "tampered"
                    result.missing += hit.integrity == "missing"
                    result.hits.append(hit)
                elif all(term.matches(hit.document) for term in terms):
                    result.hits.append(hit)
        except sqlite3.DatabaseError as error:
            raise ReconError(f"{path} is not a readable evidence store ({error})") from None
    return result


_CALLS = CALL_STATUSES_SQL


def _read(db: sqlite3.Connection, rules: LogRules, low: str, high: str, verified_through: int) -> Iterator[Hit]:
    audio = dict(
        db.execute("SELECT conversation_id, audio_sha256 FROM evidence WHERE status = 'audio_archived'").fetchall()
    )
    if "documents" not in tables(db):  # format 1 kept no documents: nothing to search
        return
    if has_document_columns(db):  # format 3: the period is the one the chain binds
        rows = db.execute(
            f"SELECT {columns(db, 'e.')}, d.seq, d.conversation_id, d.call_started, d.document "
            "FROM evidence e LEFT JOIN documents d ON d.seq = e.seq "
            f"WHERE e.call_started >= ? AND e.call_started < ? AND e.status IN {_CALLS} "
            "ORDER BY e.call_started, e.seq",
            (low, high),
        )
    else:  # format 2: only the documents know their call start
        rows = db.execute(
            f"SELECT {columns(db, 'e.')}, d.seq, d.conversation_id, d.call_started, d.document "
            "FROM documents d JOIN evidence e ON e.seq = d.seq "
            "WHERE d.call_started >= ? AND d.call_started < ? ORDER BY d.call_started, d.seq",
            (low, high),
        )
    for row in rows:
        record = to_record(row[:11])
        text = row[14]
        stored = None if row[11] is None else StoredDocument(document_digest(text), str(row[12]), str(row[13]))
        problem = document_problem(record, rules, stored)
        document = None
        integrity: Integrity = "ok"
        if problem is not None:
            integrity = "missing" if problem[0] == "document-missing" else "tampered"
        else:
            try:
                document = jsonsafe.loads(text, what="a stamped document")
            except ValueError:
                integrity = "tampered"
            else:
                if record.seq > verified_through:
                    integrity = "unverified"
        yield Hit(
            record.seq,
            record.conversation_id,
            record.call_started or (stored.call_started if stored else ""),
            record.recording_id,
            record.status,
            document,
            integrity,
            audio.get(record.conversation_id),
        )


_MISSING = object()


def _path(text: str) -> tuple[str, ...]:
    """Dotted keys; a quoted key may contain dots. () when the path cannot be read."""
    text, parts, i = text.strip(), [], 0
    while i < len(text):
        if text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                return ()
            segment, i = text[i + 1 : close], close + 1
        else:
            dot = text.find(".", i)
            dot = len(text) if dot < 0 else dot
            segment, i = text[i:dot].strip(), dot
        if not segment or '"' in segment:
            return ()
        parts.append(segment)
        if i < len(text):
            if text[i] != "." or i + 1 == len(text):
                return ()
            i += 1
    return tuple(parts)


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return _MISSING
        document = document[key]
    return document


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _equal(found: Any, wanted: str) -> bool:
    a, b = _number(found), _number(wanted)
    if a is not None and b is not None and not isinstance(found, str):
        return a == b
    return (found if isinstance(found, str) else json.dumps(found)) == wanted


def _compare(found: Any, op: Op, wanted: str) -> bool:
    if op == "=":
        return _equal(found, wanted)
    if op == "~":
        return wanted.lower() in (found if isinstance(found, str) else json.dumps(found)).lower()
    a, b = (None if isinstance(found, str) else _number(found)), _number(wanted)
    if a is None or b is None:
        return False
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
