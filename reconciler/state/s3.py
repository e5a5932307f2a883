"""The S3 state backend: the state as an object in a versioned bucket, with an S3 lock.

    KEY                                   the snapshot (the local state file's JSON format)
    KEY.journal/<fence:010d>/<serial:012d> one journal record per object, since that snapshot
    KEY.lock                              the lock, while held (reconciler.state.s3_lock)
    KEY.fence                             the highest fencing token issued

S3 has no append, so each journal record (reconciler.state.journal) is its own object,
written with one PUT (If-None-Match: *, so nothing is ever overwritten); a PUT that
returned is stored, so a crash or kill -9 of recon loses no completed change. Compaction
(as in reconciler.state.backend: at session start, end, and at the geometric threshold)
writes a new snapshot and then deletes every journal object; records left behind by a
crash between the two are already in the snapshot (serial) or from a lost lock (fence),
and replay ignores them.

`read()` takes no lock and writes nothing: it gets the snapshot, lists and gets the
journal objects, applies them in (fence, serial) order with the journal's replay rules,
and checks the snapshot's ETag did not change meanwhile (else it reads again), so it
never pairs an old snapshot with a newer, already compacted journal. `lock()` takes the
lock, reads under it, compacts at once (the snapshot then carries the new fence), yields
a StateSession, and on exit compacts again and releases, even when the block raised.

Guarantees and checks:
- The bucket must exist with versioning Enabled (checked once, on first use): every
  snapshot ever written stays recoverable. recon never changes the settings of an existing
  bucket; only the embedded sandbox's bucket (S3Settings.create_bucket) is created here.
- Snapshots are compare-and-swap: written with If-Match on the ETag this session last
  read or wrote (If-None-Match when there was none). A zombie writer whose lock was taken
  over therefore cannot overwrite its successor's snapshot; a snapshot whose lineage
  differs from the stored one is refused. Before each snapshot the lock object is also
  checked to be ours and the fence counter not past ours.
- Nothing that looks like a secret is written (reconciler.state.guard).
- Versioning keeps every old journal object and snapshot as a noncurrent version: add a
  lifecycle rule expiring noncurrent versions under KEY.journal/ (e.g. after 30 days).

Called by: reconciler.engine.workspace (the `s3` backend of recon.yaml).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from reconciler.gcpause import paused_gc
from reconciler.state.backend import DEFAULT_COMPACT_EVERY, StateBackend, StateSession, run_session
from reconciler.state.clock import Clock, utc_now
from reconciler.state.guard import ensure_secret_free
from reconciler.state.journal import Record, encode, replay
from reconciler.state.lock import DEFAULT_LEASE_SECONDS, LockError, LockInfo
from reconciler.state.model import State, StateError
from reconciler.state.s3_io import Bucket, Found, Precondition, S3Settings, make_client
from reconciler.state.s3_lock import S3HeldLock, S3Lock

__all__ = ["S3Backend", "S3Settings"]

_READ_ATTEMPTS = 5
_READERS = 16  # parallel GETs of journal objects


class S3Backend:
    """State kept in S3 under `key` in `bucket` (see the module docstring). `client` is a
    boto3 S3 client (see `from_settings`)."""

    def __init__(
        self,
        bucket: str,
        key: str,
        client: Any,
        *,
        create_bucket: bool = False,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        compact_every: int = DEFAULT_COMPACT_EVERY,
        clock: Clock = utc_now,
    ) -> None:
        self.key = key
        self.journal_prefix = key + ".journal/"
        self.description = f"s3://{bucket}/{key}"
        self.bucket = Bucket(client, bucket, self.description)
        self.create_bucket = create_bucket
        self.lease_seconds = lease_seconds
        self.compact_every = compact_every
        self.clock = clock
        self.locks = S3Lock(self.bucket, key, description=self.description, lease_seconds=lease_seconds, clock=clock)
        self._checked = False

    @classmethod
    def from_settings(cls, bucket: str, key: str, settings: S3Settings, *, region: str | None = None) -> S3Backend:
        """A backend with a boto3 client built from `settings` (`region`, recon.yaml's
        state.region, wins over the settings' region)."""
        client = make_client(settings, region)
        return cls(bucket, key, client, create_bucket=settings.create_bucket)

    def _ready(self) -> None:
        if not self._checked:
            self.bucket.check_versioning(create=self.create_bucket)
            self._checked = True

    # -- reading ----------------------------------------------------------------------

    def read(self) -> State:
        self._ready()
        with paused_gc():  # see reconciler.gcpause
            return self._load()[0]

    def _load(self) -> tuple[State, str | None]:
        """The state and the ETag of the snapshot it was read from (None: no snapshot)."""
        for _ in range(_READ_ATTEMPTS):
            snapshot = self.bucket.get(self.key)
            records = self._journal()
            seen = snapshot.etag if snapshot is not None else None
            if records is not None and self.bucket.etag(self.key) == seen:
                break
        else:
            raise StateError(
                f"{self.description} kept changing while it was being read",
                next_step="try again; if this persists, check what else writes to that state",
            )
        if snapshot is None:
            if records:
                first = records[0][0]
                raise StateError(
                    f"journal objects exist under {self.description}.journal/ but the snapshot {self.description} "
                    "does not",
                    next_step=f"restore {self.description} from an earlier version (the bucket is versioned), "
                    f"or delete the objects under s3://{self.bucket.name}/{first.rsplit('/', 2)[0]}/ "
                    "to start from an empty state",
                )
            return State.new(), None
        state = self._parse_snapshot(snapshot)
        for key, body in records:
            self._replay_object(state, key, body)
        return state, seen

    def _parse_snapshot(self, snapshot: Found) -> State:
        try:
            data = json.loads(snapshot.body)
        except ValueError as error:
            raise StateError(
                f"{self.description} is not valid JSON ({error})",
                next_step=f"restore {self.description} from an earlier version (the bucket is versioned)",
            ) from None
        return State.from_json(data, source=self.description)

    def _journal(self) -> list[tuple[str, bytes]] | None:
        """Every journal object (key, body) in (fence, serial) order; None when one vanished
        while being read (compacted meanwhile: read again)."""
        keys = sorted(self.bucket.keys(self.journal_prefix), key=self._order)
        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=min(_READERS, len(keys))) as pool:
            found = list(pool.map(self.bucket.get, keys))
        if any(item is None for item in found):
            return None
        return [(key, item.body) for key, item in zip(keys, found, strict=True) if item is not None]

    def _order(self, key: str) -> tuple[int, int, str]:
        parts = key[len(self.journal_prefix) :].split("/")
        try:
            return int(parts[0]), int(parts[1]), key
        except (IndexError, ValueError):
            raise StateError(
                f"s3://{self.bucket.name}/{key} is not a journal object of state {self.description}",
                next_step="move it out of the .journal/ prefix",
            ) from None

    def _replay_object(self, state: State, key: str, body: bytes) -> None:
        source = f"s3://{self.bucket.name}/{key}"
        try:  # an S3 PUT is never torn: an unreadable object is corruption, not a crash
            json.loads(body)
        except ValueError as error:
            raise StateError(
                f"{source} is not a valid journal record ({error})",
                next_step="restore it from an earlier version, or delete it (the resource it describes "
                "then shows up in the next plan)",
            ) from None
        replay(state, body if body.endswith(b"\n") else body + b"\n", source)

    # -- locking ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float) -> Iterator[StateSession]:
        self._ready()
        held = self.locks.acquire(operation, timeout)
        try:
            state, etag = self._load()
            if state.fence >= held.info.fence:
                held.raise_fence(state.fence + 1)
            with run_session(
                _S3Store(self, held, state.lineage, etag),
                state,
                held,
                compact_every=self.compact_every,
                clock=self.clock,
                lease_seconds=self.lease_seconds,
                description=self.description,
                kept_by="its journal objects",
            ) as session:
                yield session
        finally:
            held.release()

    def current_lock(self) -> LockInfo | None:
        self._ready()
        return self.locks.current()

    def force_unlock(self, lock_id: str) -> LockInfo:
        self._ready()
        return self.locks.force_unlock(lock_id)


class _S3Store:
    """A session's writer: journal objects and compare-and-swap snapshots."""

    def __init__(self, backend: S3Backend, held: S3HeldLock, lineage: str, etag: str | None) -> None:
        self._backend = backend
        self._held = held
        self._fence = held.info.fence
        self._lineage = lineage
        self._etag = etag

    def append(self, record: Record) -> None:
        backend = self._backend
        key = f"{backend.journal_prefix}{record['fence']:010d}/{record['serial']:012d}"
        try:
            backend.bucket.put(key, encode(record), create=True)
        except Precondition:
            raise LockError.lost(
                backend.description, f"journal object {key} already exists (another writer under this fence?)"
            ) from None

    def write_snapshot(self, state: State) -> None:
        with paused_gc():  # a large state is many small containers; see reconciler.gcpause
            self._write_snapshot(state)

    def _write_snapshot(self, state: State) -> None:
        backend = self._backend
        payload = state.to_json()
        ensure_secret_free(payload, f"state {backend.description}")
        if state.lineage != self._lineage:
            raise self._other_lineage(state.lineage, self._lineage)
        self._held.verify()
        issued, _ = backend.locks.issued_fence()
        if issued > self._fence:
            raise LockError.lost(
                backend.description, f"a newer lock (fence {issued}) was issued after this one (fence {self._fence})"
            )
        data = (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode()
        try:
            self._etag = backend.bucket.put(backend.key, data, if_match=self._etag, create=self._etag is None)
        except Precondition:
            raise self._changed_under_us(state) from None
        backend.bucket.delete_many(backend.bucket.keys(backend.journal_prefix))

    def _changed_under_us(self, state: State) -> StateError:
        found = self._backend.bucket.get(self._backend.key)
        if found is not None:
            try:
                stored = self._backend._parse_snapshot(found)
            except StateError:
                stored = None
            if stored is not None and stored.lineage != state.lineage:
                return self._other_lineage(state.lineage, stored.lineage)
        return LockError.lost(
            self._backend.description, "the snapshot was replaced by another writer since this session read it"
        )

    def _other_lineage(self, ours: str, stored: str) -> StateError:
        where = self._backend.description
        return StateError(
            f"refusing to write state {where}: it has lineage {stored}, this session's state has lineage {ours}",
            next_step="another state was put at this key; check state.bucket and state.key in recon.yaml, "
            "or restore the earlier version of the object (the bucket is versioned)",
        )

    def close(self) -> None:
        """Nothing to close: every record is already its own object."""


if TYPE_CHECKING:

    def _conforms(backend: S3Backend) -> StateBackend:
        return backend
