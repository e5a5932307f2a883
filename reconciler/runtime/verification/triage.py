"""Triage tags for capture-verification findings: a reviewer's word on one finding, kept as an
append-only audit trail in the runtime's SQLite file.

A finding is named by its stable key (reconciler.runtime.verification.matcher `Finding.key`):
"<verdict>:<cdr_id>", or "recorded_without_cdr:<recording_id>". Only findings that count
against compliance or need explaining are triaged: not_recorded, partial, recorded_without_cdr
(pending resolves on its own, exempt is already declared, verified is not a finding).

Tags: missing-recording and missing-cdr confirm the finding (it stays counted); false-positive,
test-call and maintenance-window exclude it from compliance (`EXCLUDING`). `FITS` says which
verdicts each tag may be put on.

Store: the runtime's SQLite file (default `.recon/runtime.db`, shared with the evidence log and
the cursor store; this module only adds its own table), WAL mode:

    verification_triage_events(seq INTEGER PRIMARY KEY AUTOINCREMENT, key, tag NULL, note,
                               reviewer, at)   index on key

Nothing is ever updated or deleted: tagging, re-tagging and clearing (tag NULL) each append one
event, so the trail of who triaged what, when and why is audit evidence. The current tag of a
key is its latest event, unless that event cleared it. Writes run in `BEGIN IMMEDIATE`
transactions behind a lock (thread-safe), like the cursor store.

Called by: reconciler.cli.triage_commands (`recon triage`), reports, tests.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reconciler.errors import ReconError, UsageError
from reconciler.runtime.sqlite_store import DEFAULT_DB, open_store
from reconciler.runtime.verification.model import Verdict

MAX_ID = 256
"""The longest finding id (CDR or recording id) a key may carry."""

_TABLE = "verification_triage_events"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    tag TEXT,
    note TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {_TABLE}_key ON {_TABLE} (key);
"""
_COLUMNS = "seq, key, tag, note, reviewer, at"


class TriageTag(StrEnum):
    """A reviewer's conclusion about one finding."""

    MISSING_RECORDING = "missing-recording"
    """Confirmed: the call was not (fully) recorded. Stays counted against compliance."""
    MISSING_CDR = "missing-cdr"
    """Confirmed: the switch did not report a recorded call. Stays counted."""
    FALSE_POSITIVE = "false-positive"
    """The finding is wrong. Excluded from compliance."""
    TEST_CALL = "test-call"
    """A test call, not a trader's. Excluded."""
    MAINTENANCE_WINDOW = "maintenance-window"
    """The call fell in a maintenance window. Excluded."""


EXCLUDING: frozenset[TriageTag] = frozenset(
    {TriageTag.FALSE_POSITIVE, TriageTag.TEST_CALL, TriageTag.MAINTENANCE_WINDOW}
)
"""Tags that take their finding out of the compliance figures."""

TRIAGED: frozenset[Verdict] = frozenset({Verdict.NOT_RECORDED, Verdict.PARTIAL, Verdict.RECORDED_WITHOUT_CDR})
"""The verdicts a finding can be triaged under."""

FITS: dict[TriageTag, frozenset[Verdict]] = {
    TriageTag.MISSING_RECORDING: frozenset({Verdict.NOT_RECORDED, Verdict.PARTIAL}),
    TriageTag.MISSING_CDR: frozenset({Verdict.RECORDED_WITHOUT_CDR}),
    TriageTag.FALSE_POSITIVE: TRIAGED,
    TriageTag.TEST_CALL: TRIAGED,
    TriageTag.MAINTENANCE_WINDOW: TRIAGED,
}
"""The verdicts each tag may be put on."""

_NOT_TRIAGED = {
    Verdict.PENDING: "a pending call has no verdict yet: wait for the late-recording grace to pass",
    Verdict.EXEMPT: "an exempt call is covered by a declared exemption and needs no triage",
    Verdict.VERIFIED: "a verified call is not a finding",
}


class TriageError(UsageError):
    """A triage tag cannot be set or cleared as asked (bad key, tag, note or reviewer). Exit 1."""


@dataclass(frozen=True, slots=True)
class Triage:
    """The current tag of one finding."""

    key: str
    tag: TriageTag
    note: str
    """Why: what the reviewer found (an auditor reads it)."""
    reviewer: str
    at: str
    """When it was set: ISO-8601 UTC with milliseconds, e.g. 2026-11-21T09:30:00.000Z."""

    @property
    def excludes(self) -> bool:
        """Whether the tag takes the finding out of the compliance figures."""
        return self.tag in EXCLUDING


@dataclass(frozen=True, slots=True)
class TriageEvent:
    """One entry of the trail: a tag set (or replaced), or cleared (`tag` None)."""

    seq: int
    key: str
    tag: TriageTag | None
    note: str
    reviewer: str
    at: str


def parse_key(key: str) -> tuple[Verdict, str]:
    """Split a finding key "<verdict>:<id>" into its verdict and id, or raise TriageError saying
    what is wrong with it."""
    example = "e.g. not_recorded:CDR-1234 (the keys are listed by the verification report)"
    verdict_text, colon, finding_id = key.partition(":")
    if not colon:
        raise TriageError(f"finding key {key!r} has no ':'", next_step=f"write <verdict>:<id>, {example}")
    try:
        verdict = Verdict(verdict_text)
    except ValueError:
        triaged = ", ".join(sorted(TRIAGED))
        raise TriageError(
            f"finding key {key!r}: {verdict_text!r} is not a verdict", next_step=f"start the key with one of {triaged}"
        ) from None
    if verdict not in TRIAGED:
        raise TriageError(
            f"finding key {key!r}: {verdict.value} findings are not triaged ({_NOT_TRIAGED[verdict]})",
            next_step=f"triage only {', '.join(sorted(TRIAGED))} findings",
        )
    if not finding_id:
        raise TriageError(f"finding key {key!r} has no id after ':'", next_step=example)
    if len(finding_id) > MAX_ID:
        raise TriageError(
            f"finding key {key[:40]!r}...: the id is {len(finding_id)} characters, at most {MAX_ID} are allowed",
            next_step="copy the key from the verification report",
        )
    if any(unicodedata.category(c) == "Cc" for c in finding_id):
        raise TriageError(
            f"finding key {key!r} contains a control character", next_step="copy the key from the verification report"
        )
    if finding_id != finding_id.strip():
        raise TriageError(
            f"finding key {key!r} has leading or trailing spaces", next_step="remove them; ids never carry them"
        )
    return verdict, finding_id


def parse_tag(tag: TriageTag | str) -> TriageTag:
    """`tag` as a TriageTag, or TriageError naming the tags."""
    try:
        return TriageTag(tag)
    except ValueError:
        raise TriageError(
            f"{tag!r} is not a triage tag", next_step=f"use one of {', '.join(t.value for t in TriageTag)}"
        ) from None


def timestamp(at: dt.datetime) -> str:
    """`at` as ISO-8601 UTC with milliseconds and a Z. A naive datetime is refused (ValueError)."""
    if at.tzinfo is None:
        raise ValueError("a triage time must be timezone-aware (e.g. datetime.now(UTC))")
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _required(value: str, what: str, next_step: str) -> str:
    text = value.strip()
    if not text:
        raise TriageError(f"the {what} is empty", next_step=next_step)
    return text


_NOTE_STEP = "say why in --note: an auditor reads it (e.g. 'turret 12 was in a maintenance window, ticket CHG-881')"
_REVIEWER_STEP = "name the reviewer (--by NAME)"


class TriageStore:
    """Triage tags at `path` (created, with its folder, when absent). Thread-safe."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_store(self.path, "NORMAL", _SCHEMA)
        except (sqlite3.DatabaseError, OSError) as error:
            raise ReconError(
                f"{self.path} is not a usable runtime store ({error})",
                next_step="check the path; the runtime store is an SQLite file (default .recon/runtime.db)",
            ) from None

    def set(self, key: str, tag: TriageTag | str, *, note: str, reviewer: str, at: dt.datetime | None = None) -> Triage:
        """Tag the finding `key` (replacing its current tag, if any) and return the new current
        tag. Raises TriageError when the key, tag, note or reviewer is unusable, or when the tag
        does not fit the key's verdict."""
        verdict, _ = parse_key(key)
        chosen = parse_tag(tag)
        if verdict not in FITS[chosen]:
            fitting = ", ".join(t.value for t in TriageTag if verdict in FITS[t])
            raise TriageError(
                f"tag {chosen.value} does not fit a {verdict.value} finding", next_step=f"use one of {fitting}"
            )
        triage = Triage(
            key=key,
            tag=chosen,
            note=_required(note, "note", _NOTE_STEP),
            reviewer=_required(reviewer, "reviewer", _REVIEWER_STEP),
            at=timestamp(at or dt.datetime.now(dt.UTC)),
        )
        with self._lock:
            self._append(triage.key, triage.tag.value, triage.note, triage.reviewer, triage.at, must_be_tagged=False)
        return triage

    def clear(self, key: str, *, note: str, reviewer: str) -> None:
        """Clear the finding's current tag (it counts as untriaged again). Raises TriageError
        when the key has no current tag."""
        parse_key(key)
        text = _required(note, "note", _NOTE_STEP)
        who = _required(reviewer, "reviewer", _REVIEWER_STEP)
        with self._lock:
            self._append(key, None, text, who, timestamp(dt.datetime.now(dt.UTC)), must_be_tagged=True)

    def _append(self, key: str, tag: str | None, note: str, reviewer: str, at: str, *, must_be_tagged: bool) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if must_be_tagged:
                row = db.execute(f"SELECT tag FROM {_TABLE} WHERE key = ? ORDER BY seq DESC LIMIT 1", (key,)).fetchone()
                if row is None or row[0] is None:
                    raise TriageError(
                        f"{key} has no triage tag to clear",
                        next_step="check the key with `recon triage list`",
                    )
            db.execute(
                f"INSERT INTO {_TABLE} (key, tag, note, reviewer, at) VALUES (?, ?, ?, ?, ?)",
                (key, tag, note, reviewer, at),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def current(self) -> dict[str, Triage]:
        """The current tag of every tagged finding, by key."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT e.key, e.tag, e.note, e.reviewer, e.at FROM {_TABLE} e "
                f"JOIN (SELECT key, max(seq) AS seq FROM {_TABLE} GROUP BY key) latest ON e.seq = latest.seq "
                "WHERE e.tag IS NOT NULL ORDER BY e.key"
            ).fetchall()
        return {key: Triage(key, TriageTag(tag), note, reviewer, at) for key, tag, note, reviewer, at in rows}

    def history(self, key: str | None = None) -> list[TriageEvent]:
        """Every event (of one key), oldest first."""
        where, args = ("WHERE key = ?", (key,)) if key is not None else ("", ())
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM {_TABLE} {where} ORDER BY seq", args).fetchall()
        return [
            TriageEvent(int(seq), str(k), None if tag is None else TriageTag(tag), note, reviewer, at)
            for seq, k, tag, note, reviewer, at in rows
        ]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> TriageStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
