"""The runtime's embedded SQLite store: how its writers open the one file they share.

The evidence log (reconciler.runtime.evidence) and the capture-verification cursor store
(reconciler.runtime.verification.cursor_store) keep their tables in one file, default
`.recon/runtime.db`. Each writer holds one connection in autocommit mode (its own
`BEGIN IMMEDIATE` transactions), usable from any thread behind the writer's lock, in WAL mode
so readers never block it, with a 30 s busy timeout for the other writer. The cursor store
passes its `CREATE TABLE IF NOT EXISTS` script; the evidence log passes none and creates or
upgrades its tables itself, in one transaction, after opening
(reconciler.runtime.evidence_migrate: it owns `PRAGMA user_version`).

Called by: the two stores above.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

DEFAULT_DB = Path(".recon") / "runtime.db"
"""The runtime store, relative to the project folder."""
Synchronous = Literal["NORMAL", "FULL"]


def open_store(path: Path, synchronous: Synchronous, schema: str) -> sqlite3.Connection:
    """A writer's connection to `path` (created, with its folder, when absent) with `schema`
    applied. Raises sqlite3.DatabaseError (the connection closed) when the file is not a
    usable SQLite database: the caller names the file and what to do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(schema)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
