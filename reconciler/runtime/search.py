"""The auditor's search over what the runtime attached to calls: `recon search`.

    recon search 'market_snapshot.commodity=Natural_Gas_Hub' --from 2026-07-01 --to 2026-09-30

Each stamped call has a document in the evidence store (reconciler.runtime.evidence, table
`documents`): the canonical JSON `{"market_snapshot": {...}, "status": ...}` that was attached
to it, whose SHA-256 the chained evidence record holds. A search reads the documents of the
calls that started in the period, checks each against its record (a document that no longer
hashes to its record is reported as `tampered`, never silently shown), and keeps those that
satisfy every term.

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

Called by: reconciler.cli.evidence_commands (`recon search`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ReconError, UsageError

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


@dataclass(frozen=True, slots=True)
class Hit:
    """One call the search found."""

    seq: int
    conversation_id: str
    call_started: str
    recording_id: str
    status: str
    document: Any
    """The parsed document, or None when it is `tampered`."""
    integrity: Literal["ok", "tampered"]
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
    scanned: int = 0
    """Documents in the period that were read."""
    tampered: int = 0
    """Documents in the period that no longer match their evidence record."""


def search(
    path: Path, terms: Sequence[Term], first: dt.date | None = None, last: dt.date | None = None
) -> SearchResult:
    """The calls that started from `first` to `last` (inclusive UTC days; open when None)
    whose document satisfies every term, in call-start order. Tampered documents in the
    period are always returned (flagged), whatever the terms: they cannot be judged."""
    result = SearchResult()
    for hit in _read(path, first, last):
        result.scanned += 1
        if hit.integrity == "tampered":
            result.tampered += 1
            result.hits.append(hit)
        elif all(term.matches(hit.document) for term in terms):
            result.hits.append(hit)
    return result


def _read(path: Path, first: dt.date | None, last: dt.date | None) -> Iterator[Hit]:
    if not path.is_file():
        raise UsageError(f"no evidence store at {path}", next_step="pass --db PATH (default .recon/runtime.db)")
    low = f"{first.isoformat()}T00:00:00" if first else ""
    high = f"{(last + dt.timedelta(days=1)).isoformat()}T00:00:00" if last else "9999"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.DatabaseError as error:
        raise ReconError(f"{path} is not a readable evidence store ({error})") from None
    try:
        audio = dict(
            db.execute("SELECT conversation_id, audio_sha256 FROM evidence WHERE status = 'audio_archived'").fetchall()
        )
        rows = db.execute(
            "SELECT d.seq, d.conversation_id, d.call_started, d.document, e.snapshot_sha256, e.recording_id, "
            "e.status FROM documents d LEFT JOIN evidence e ON e.seq = d.seq "
            "WHERE d.call_started >= ? AND d.call_started < ? ORDER BY d.call_started, d.seq",
            (low, high),
        )
        for seq, conversation, started, document, digest, recording, status in rows:
            text = document if isinstance(document, str) else ""
            intact = digest is not None and hashlib.sha256(text.encode()).hexdigest() == digest
            yield Hit(
                int(seq),
                str(conversation),
                str(started),
                str(recording or ""),
                str(status or ""),
                json.loads(text) if intact else None,
                "ok" if intact else "tampered",
                audio.get(conversation),
            )
    except sqlite3.DatabaseError as error:
        raise ReconError(
            f"{path} has no searchable documents ({error})",
            next_step="documents are kept by recon runtime from schema version 2; older logs cannot be searched",
        ) from None
    finally:
        db.close()


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
