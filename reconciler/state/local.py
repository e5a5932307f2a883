"""The local state backend: a snapshot file, its journal, its lock and its fence counter.

    .recon/state.json           the snapshot (pretty JSON, resources sorted, newline at end)
    .recon/state.json.journal   records since that snapshot (JSON lines, append-only)
    .recon/state.json.lock      the lock, while held (reconciler.state.lockfile)
    .recon/state.json.fence     the highest fencing token issued

`read()` loads the snapshot and replays the journal (reconciler.state.journal); it writes
nothing, takes no lock, and retries when a writer replaced the snapshot while it was
reading, so it never pairs an old snapshot with a newer journal. `lock()` takes the lock,
reads the state under it and compacts at once — the snapshot then carries the new fence
(records of an older lock holder are ignored from here on) and any torn last line left by
a crash is gone before this session appends — then yields a StateSession (see
reconciler.state.backend for the journal, compaction and durability design). On exit it
compacts again and releases the lock, even when the block raised.

Called by: reconciler.engine.workspace (the `local` backend of recon.yaml).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.gcpause import paused_gc
from reconciler.state.backend import DEFAULT_COMPACT_EVERY, StateBackend, StateSession, run_session
from reconciler.state.clock import Clock, utc_now
from reconciler.state.files import storage_errors, write_all, write_atomically
from reconciler.state.guard import ensure_secret_free
from reconciler.state.journal import Record, encode, replay
from reconciler.state.lock import DEFAULT_LEASE_SECONDS, LockError, LockInfo
from reconciler.state.lockfile import LockFile
from reconciler.state.model import State, StateError

_READ_ATTEMPTS = 5

_Signature = tuple[int, int, int] | None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class LocalBackend:
    """State kept in local files next to `path` (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        compact_every: int = DEFAULT_COMPACT_EVERY,
        clock: Clock = utc_now,
    ) -> None:
        self.path = Path(path)
        self.journal_path = _sibling(self.path, ".journal")
        self.lock_path = _sibling(self.path, ".lock")
        self.fence_path = _sibling(self.path, ".fence")
        self.description = str(self.path)
        self.lease_seconds = lease_seconds
        self.compact_every = compact_every
        self.clock = clock
        self.locks = LockFile(
            self.lock_path,
            fence_path=self.fence_path,
            description=self.description,
            lease_seconds=lease_seconds,
            clock=clock,
        )

    # -- reading ----------------------------------------------------------------------

    def read(self) -> State:
        with paused_gc():  # see reconciler.gcpause
            return self._read()

    def _read(self) -> State:
        for _ in range(_READ_ATTEMPTS):
            state, seen = self._read_snapshot()
            with storage_errors("read", self.journal_path):
                try:
                    journal = self.journal_path.read_bytes()
                except FileNotFoundError:
                    journal = b""
            if self._current_signature() == seen:
                break
        else:
            raise StateError(
                f"{self.path} kept changing while it was being read",
                next_step="try again; if this persists, check what else writes to that file",
            )
        if state is None:
            if journal.strip():
                raise StateError(
                    f"{self.journal_path} exists but its snapshot {self.path} does not",
                    next_step=f"restore {self.path} from a backup, or delete {self.journal_path} to start from an empty state",
                )
            return State.new()
        replay(state, journal, str(self.journal_path))
        return state

    def _current_signature(self) -> _Signature:
        try:
            return _signature(self.path.stat())
        except FileNotFoundError:
            return None

    def _read_snapshot(self) -> tuple[State | None, _Signature]:
        with storage_errors("read", self.path):
            try:
                with self.path.open("rb") as file:
                    seen = _signature(os.fstat(file.fileno()))
                    raw = file.read()
            except FileNotFoundError:
                return None, None
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise StateError(
                f"{self.path} is not valid JSON ({error})",
                next_step=f"restore {self.path} from a backup",
            ) from None
        return State.from_json(data, source=str(self.path)), seen

    # -- locking ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float) -> Iterator[StateSession]:
        held = self.locks.acquire(operation, timeout)
        try:
            state = self.read()
            if state.fence >= held.info.fence:
                held.raise_fence(state.fence + 1)
            with run_session(
                _LocalStore(self, held.info.fence),
                state,
                held,
                compact_every=self.compact_every,
                clock=self.clock,
                lease_seconds=self.lease_seconds,
                description=self.description,
                kept_by=str(self.journal_path),
            ) as session:
                yield session
        finally:
            held.release()

    def current_lock(self) -> LockInfo | None:
        return self.locks.current()

    def force_unlock(self, lock_id: str) -> LockInfo:
        return self.locks.force_unlock(lock_id)


class _LocalStore:
    """A session's writer: journal appends and snapshots for one LocalBackend and fence."""

    def __init__(self, backend: LocalBackend, fence: int) -> None:
        self._backend = backend
        self._fence = fence
        self._fd: int | None = None

    def append(self, record: Record) -> None:
        journal = self._backend.journal_path
        data = encode(record)
        with storage_errors("append to", journal):
            if self._fd is None:
                journal.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            write_all(self._fd, data)

    def write_snapshot(self, state: State) -> None:
        with paused_gc():  # a large state is many small containers; see reconciler.gcpause
            self._write_snapshot(state)

    def _write_snapshot(self, state: State) -> None:
        backend = self._backend
        payload = state.to_json()
        ensure_secret_free(payload, f"state {backend.description}")
        issued = backend.locks.issued_fence()
        if issued > self._fence:
            raise LockError.lost(
                backend.description, f"a newer lock (fence {issued}) was issued after this one (fence {self._fence})"
            )
        data = (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode()
        with storage_errors("write", backend.path):
            write_atomically(backend.path, data, durable=True)
        with storage_errors("truncate", backend.journal_path):
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
            elif backend.journal_path.exists():
                os.truncate(backend.journal_path, 0)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


if TYPE_CHECKING:

    def _conforms(backend: LocalBackend) -> StateBackend:
        return backend
