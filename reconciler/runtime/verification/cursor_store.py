"""The collectors' checkpoints: CDRs read from the switch and each endpoint's cursor, in the
embedded SQLite store.

Store: the runtime's SQLite file (default `.recon/runtime.db`, the same file as the evidence
log, which owns `PRAGMA user_version`; this module only adds its own tables), WAL mode:

    verification_cdrs(collector, cdr_id, trader_id, turret, line, direction, start_ms,
                      duration_ms, reported_at_ms NULL, member, stored_at_ms)
        PRIMARY KEY (collector, cdr_id); index on start_ms
    verification_cursors(collector, member, cursor NULL, high_water_ms NULL, updated_at_ms)
        PRIMARY KEY (collector, member)
    verification_anomalies(collector, kind, cdr_id, fingerprint, member, trader_id, at_ms,
                           detail, seen_at_ms)
        PRIMARY KEY (collector, kind, cdr_id, fingerprint); index on at_ms

A CDR is inserted with INSERT OR IGNORE: seen twice with the same fields (from both HA members,
after a failover or a restart) it is stored once, as first seen. Seen again with *different*
fields, the first is kept and the difference is recorded as a `cdr_changed` anomaly (the switch
changed its story: a finding of `recon verify`, an alert of the collector); a CDR that failed
the checks is recorded as an `invalid_cdr` anomaly. Anomalies are keyed by what was sent
(its fingerprint), so sending the same thing again records nothing new. `save_batch` writes a batch's CDRs and the member's
new cursor in ONE `BEGIN IMMEDIATE` transaction: after a crash the stored cursor always points
just past the stored CDRs, so a restart resumes exactly (no CDR lost, none counted twice).
`high_water_ms` (the latest `reportedAt` stored from that member) only ever grows.

`CursorStore` holds one connection behind a lock (thread-safe), like the evidence log, and opens
its own connection even when the evidence log has the file open.

Called by: reconciler.runtime.verification.collector, the matcher and reports (readers), tests.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ReconError
from reconciler.runtime.sqlite_store import DEFAULT_DB, open_store
from reconciler.runtime.verification.cdr_check import CdrRejection
from reconciler.runtime.verification.model import CDR_CHANGED, INVALID_CDR, Cdr, CdrAnomaly, iso_ms

_FIELDS = ("trader_id", "turret", "line", "direction", "start_ms", "duration_ms")
_ANOMALY_COLUMNS = "kind, collector, member, cdr_id, trader_id, at_ms, detail, fingerprint"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SavedBatch:
    """What `save_batch_checked` stored: new CDRs, and the anomalies recorded for the first time."""

    new: int
    anomalies: tuple[CdrAnomaly, ...] = ()


_CDR_COLUMNS = "cdr_id, collector, trader_id, turret, line, direction, start_ms, duration_ms"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS verification_cdrs (
    collector TEXT NOT NULL,
    cdr_id TEXT NOT NULL,
    trader_id TEXT NOT NULL,
    turret TEXT NOT NULL,
    line TEXT NOT NULL,
    direction TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    reported_at_ms INTEGER NULL,
    member TEXT NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    PRIMARY KEY (collector, cdr_id)
);
CREATE INDEX IF NOT EXISTS verification_cdrs_start ON verification_cdrs (start_ms);
CREATE TABLE IF NOT EXISTS verification_anomalies (
    collector TEXT NOT NULL,
    kind TEXT NOT NULL,
    cdr_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    member TEXT NOT NULL,
    trader_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    detail TEXT NOT NULL,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (collector, kind, cdr_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS verification_anomalies_at ON verification_anomalies (at_ms);
CREATE TABLE IF NOT EXISTS verification_cursors (
    collector TEXT NOT NULL,
    member TEXT NOT NULL,
    cursor TEXT NULL,
    high_water_ms INTEGER NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (collector, member)
);
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where one member of one collector was left."""

    collector: str
    member: str
    cursor: str | None
    """The member's opaque cursor from its last answer (None: poll it with `since`)."""
    high_water_ms: int | None
    """The latest reportedAt stored from this member."""
    updated_at_ms: int


class CursorStore:
    """CDRs and cursors at `path` (created, with its folder, when absent). Thread-safe."""

    def __init__(self, path: str | Path = DEFAULT_DB, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_store(self.path, synchronous, _SCHEMA)
        except sqlite3.DatabaseError as error:
            raise ReconError(
                f"{self.path} is not a usable runtime store ({error})",
                next_step="check the path; the runtime store is an SQLite file (default .recon/runtime.db)",
            ) from None

    def save_batch(
        self,
        collector: str,
        member: str,
        cdrs: Sequence[Cdr],
        cursor: str | None,
        high_water_ms: int | None,
        reported_at_ms: Sequence[int] | None = None,
    ) -> int:
        """Store `cdrs` (each once per (collector, cdr_id); a CDR already stored is left as it is)
        and set `member`'s cursor, in one transaction: all of it or none of it. `reported_at_ms`,
        when given, is parallel to `cdrs`. The member's high water becomes max(stored, given).
        -> how many of `cdrs` were new. Calling it again with the same batch adds nothing."""
        return self.save_batch_checked(collector, member, cdrs, cursor, high_water_ms, reported_at_ms).new

    def save_batch_checked(
        self,
        collector: str,
        member: str,
        cdrs: Sequence[Cdr],
        cursor: str | None,
        high_water_ms: int | None,
        reported_at_ms: Sequence[int] | None = None,
        rejected: Sequence[CdrRejection] = (),
    ) -> SavedBatch:
        """As `save_batch`, and in the same transaction: each CDR whose id is already stored (or
        earlier in the batch) with different fields, and each of `rejected`, becomes an anomaly
        (recorded once per fingerprint). -> the new CDRs' count and the new anomalies."""
        if reported_at_ms is not None and len(reported_at_ms) != len(cdrs):
            raise ValueError("reported_at_ms must have one entry per CDR")
        if any(c.collector != collector for c in cdrs):
            raise ValueError(f"every CDR of a batch for collector {collector} must carry that collector")
        now = _now_ms()
        reported: Sequence[int | None] = reported_at_ms if reported_at_ms is not None else [None] * len(cdrs)
        rows = [
            (
                c.collector,
                c.cdr_id,
                c.trader_id,
                c.turret,
                c.line,
                c.direction,
                c.start_ms,
                c.duration_ms,
                r,
                member,
                now,
            )
            for c, r in zip(cdrs, reported, strict=True)
        ]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                anomalies = [_rejected(collector, member, r, now) for r in rejected]
                anomalies += _changed(self._stored(db, collector, [c.cdr_id for c in cdrs]), cdrs, member, now)
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO verification_cdrs (collector, cdr_id, trader_id, turret, line, direction, "
                    "start_ms, duration_ms, reported_at_ms, member, stored_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                added = db.total_changes - before
                fresh = [a for a in anomalies if self._put_anomaly(db, a, now)]
                self._put_cursor(db, collector, member, cursor, high_water_ms, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return SavedBatch(added, tuple(fresh))

    @staticmethod
    def _stored(db: sqlite3.Connection, collector: str, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        unique = sorted(set(ids))
        for offset in range(0, len(unique), _CHUNK):
            chunk = unique[offset : offset + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                f"SELECT cdr_id, {', '.join(_FIELDS)} FROM verification_cdrs WHERE collector = ? AND cdr_id IN ({marks})",
                (collector, *chunk),
            ):
                found[str(row[0])] = tuple(row[1:])
        return found

    @staticmethod
    def _put_anomaly(db: sqlite3.Connection, anomaly: CdrAnomaly, now: int) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO verification_anomalies (collector, kind, cdr_id, fingerprint, member, trader_id, "
            "at_ms, detail, seen_at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                anomaly.collector,
                anomaly.kind,
                anomaly.cdr_id,
                anomaly.fingerprint,
                anomaly.member,
                anomaly.trader_id,
                anomaly.at_ms,
                anomaly.detail,
                now,
            ),
        )
        return cursor.rowcount == 1

    def anomalies(
        self, collector: str | None = None, from_ms: int | None = None, to_ms: int | None = None
    ) -> list[CdrAnomaly]:
        """Recorded anomalies (of one collector) whose call started (or was reported or seen) in
        [from_ms, to_ms), by time then key."""
        clauses: list[str] = []
        args: list[Any] = []
        for clause, value in (("collector = ?", collector), ("at_ms >= ?", from_ms), ("at_ms < ?", to_ms)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ANOMALY_COLUMNS} FROM verification_anomalies {where} ORDER BY at_ms, kind, cdr_id", args
            ).fetchall()
        return [
            CdrAnomaly(str(a), str(b), str(c), str(d), str(e), int(f), str(g), str(h))
            for a, b, c, d, e, f, g, h in rows
        ]

    def _put_cursor(
        self, db: sqlite3.Connection, collector: str, member: str, cursor: str | None, high_water: int | None, now: int
    ) -> None:
        db.execute(
            "INSERT INTO verification_cursors (collector, member, cursor, high_water_ms, updated_at_ms) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (collector, member) DO UPDATE SET cursor = excluded.cursor, "
            "high_water_ms = max(coalesce(high_water_ms, excluded.high_water_ms), "
            "coalesce(excluded.high_water_ms, high_water_ms)), updated_at_ms = excluded.updated_at_ms",
            (collector, member, cursor, high_water, now),
        )

    def cursor(self, collector: str, member: str) -> Checkpoint | None:
        """The member's checkpoint, or None when it was never polled."""
        with self._lock:
            row = self._db.execute(
                "SELECT collector, member, cursor, high_water_ms, updated_at_ms FROM verification_cursors "
                "WHERE collector = ? AND member = ?",
                (collector, member),
            ).fetchone()
        return None if row is None else Checkpoint(*row)

    def checkpoints(self, collector: str | None = None) -> list[Checkpoint]:
        """Every checkpoint (of one collector), by collector and member."""
        where, args = ("WHERE collector = ?", (collector,)) if collector is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                "SELECT collector, member, cursor, high_water_ms, updated_at_ms FROM verification_cursors "
                f"{where} ORDER BY collector, member",
                args,
            ).fetchall()
        return [Checkpoint(*row) for row in rows]

    def high_water(self, collector: str) -> int | None:
        """The latest reportedAt stored for the collector from any member (None: nothing yet)."""
        with self._lock:
            row = self._db.execute(
                "SELECT max(high_water_ms) FROM verification_cursors WHERE collector = ?", (collector,)
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def cdrs(self, collector: str | None = None, from_ms: int | None = None, to_ms: int | None = None) -> list[Cdr]:
        """Stored CDRs (of one collector) that started in [from_ms, to_ms), by start time then id."""
        clauses: list[str] = []
        args: list[Any] = []
        for clause, value in (("collector = ?", collector), ("start_ms >= ?", from_ms), ("start_ms < ?", to_ms)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CDR_COLUMNS} FROM verification_cdrs {where} ORDER BY start_ms, cdr_id", args
            ).fetchall()
        return [Cdr(str(a), str(b), str(c), str(d), str(e), str(f), int(g), int(h)) for a, b, c, d, e, f, g, h in rows]

    def count(self, collector: str | None = None) -> int:
        """How many CDRs are stored (for one collector)."""
        with self._lock:
            if collector is None:
                row = self._db.execute("SELECT count(*) FROM verification_cdrs").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM verification_cdrs WHERE collector = ?", (collector,)
                ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """CDRs stored per collector."""
        with self._lock:
            rows = self._db.execute("SELECT collector, count(*) FROM verification_cdrs GROUP BY collector").fetchall()
        return {str(name): int(n) for name, n in rows}

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> CursorStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _rejected(collector: str, member: str, rejection: CdrRejection, now: int) -> CdrAnomaly:
    at = rejection.start_ms if rejection.start_ms is not None else rejection.reported_ms
    return CdrAnomaly(
        INVALID_CDR,
        collector,
        member,
        rejection.cdr_id,
        rejection.trader_id,
        now if at is None else at,
        rejection.detail,
        rejection.fingerprint,
    )


def _fields(cdr: Cdr) -> tuple[Any, ...]:
    return (cdr.trader_id, cdr.turret, cdr.line, cdr.direction, cdr.start_ms, cdr.duration_ms)


def _show_field(name: str, value: Any) -> str:
    if name == "start_ms":
        return iso_ms(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _changed(stored: dict[str, tuple[Any, ...]], cdrs: Sequence[Cdr], member: str, now: int) -> list[CdrAnomaly]:
    """An anomaly per CDR whose fields differ from the stored (or an earlier one in the batch)."""
    first = dict(stored)
    found: list[CdrAnomaly] = []
    for cdr in cdrs:
        fields = _fields(cdr)
        kept = first.setdefault(cdr.cdr_id, fields)
        if kept == fields:
            continue
        changes = ", ".join(
            f"{name} {_show_field(name, old)} -> {_show_field(name, new)}"
            for name, old, new in zip(_FIELDS, kept, fields, strict=True)
            if old != new
        )
        digest = hashlib.sha256(repr(fields).encode()).hexdigest()
        detail = (
            f"CDR {cdr.cdr_id} was sent again with different fields ({changes}); the first version is kept. "
            "The switch changed its story: check the switch and the collector's servers"
        )
        found.append(CdrAnomaly(CDR_CHANGED, cdr.collector, member, cdr.cdr_id, cdr.trader_id, kept[4], detail, digest))
    return found
