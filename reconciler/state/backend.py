"""The state backend protocol and the session through which an apply records its progress.

A backend stores one state. `read()` returns it without locking or writing anything (for
plan, show, drift). `lock()` takes the state's lock, reads the state fresh under it and
yields a StateSession; every change an apply makes goes through that session.

Saving after every resource, cheaply. A session never rewrites the whole state per
change: each event (intent, succeeded, removed, failed) appends ONE record to an
append-only journal (JSON lines, see reconciler.state.journal) and updates the state in
memory, so a 10,000-resource apply writes O(n) bytes instead of O(n²). The journal is
folded into a new snapshot ("compaction") when a session starts (stamping the new lock's
fencing token), when it ends, and whenever the journal holds `compact_every` records
(5,000 by default) or twice as many records as the state has resources, whichever is
more. The second bound makes compaction geometric: a fixed threshold would rewrite a
growing snapshot every 5,000 records, O(n²) over a large apply (measured: a 10,000-create
apply took 6x, not 4x, the time of a 2,500-create one); this way the total bytes written
stay O(n) and replay never reads more than about twice the snapshot's records.

Durability, deliberately split:
- each record is written with one write() and no fsync: once write() returns the OS has
  it, so a crash or kill -9 of recon loses nothing — the next read replays it;
- fsync happens only at compaction (snapshot file, then its folder) and so at session end.
  A power loss or kernel crash mid-apply may lose the records since the last compaction.
  This is a speed decision: one fsync per record (20,000 for a 10k apply) would turn a
  seconds-long apply into minutes. The records lost that way are exactly the ones the
  next plan re-discovers by natural key, which is what `pending` intents are for.

Nothing that looks like a secret is ever written (reconciler.state.guard).

Called by: reconciler.engine (apply, import, forget via StateSession; plan/show via read),
the CLI (force-unlock), backends such as reconciler.state.local.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from reconciler.redact import scrub_data
from reconciler.state.clock import Clock, iso, utc_now
from reconciler.state.guard import ensure_secret_free, redact
from reconciler.state.journal import Record, apply_record
from reconciler.state.lock import LeaseRenewer, LockInfo, log
from reconciler.state.model import ResourceState, State, StateError

DEFAULT_COMPACT_EVERY = 5000


class Lease(Protocol):
    """A lock held by this process, as a session needs it."""

    @property
    def info(self) -> LockInfo: ...

    def renew(self) -> LockInfo:
        """Extend the lease now. LockError if the lock is no longer ours."""
        ...

    def ensure_held(self) -> None:
        """Raise LockError unless this process may still write under the lock."""
        ...


class SessionStore(Protocol):
    """Where a session's records and snapshots go (one per backend)."""

    def append(self, record: Record) -> None:
        """Append one record to the journal with a single write (no fsync)."""
        ...

    def write_snapshot(self, state: State) -> None:
        """Write `state` as the snapshot atomically and durably, then empty the journal.
        Refuses (StateError) a state containing a secret, and (LockError) if a newer lock
        than the state's fence has been issued."""
        ...

    def close(self) -> None: ...


class StateBackend(Protocol):
    """One stored state. See the module docstring."""

    description: str
    """Where the state lives (a file path, a URL), for messages."""

    def read(self) -> State:
        """The current state (snapshot plus journal); `State.new()` when none exists yet.
        Never modifies anything and never takes the lock."""
        ...

    def lock(self, operation: str, timeout: float) -> AbstractContextManager[StateSession]:
        """Take the lock (waiting up to `timeout` seconds, then LockError), read the state
        under it and yield a session; on exit compact and release. The lease is renewed
        by a daemon thread every lease/3 while held."""
        ...

    def current_lock(self) -> LockInfo | None:
        """Who holds the lock now; None when the state is not locked."""
        ...

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock `lock_id` whoever holds it; LockError when the state is not
        locked or is locked under another id (the message gives the current one)."""
        ...


class StateSession:
    """An open, locked state: `state` as recorded so far and `lock`, the lock it holds.

    Each recording method appends one journal record and applies it to `state` (serial
    grows by one per record). Not thread-safe: call it from one thread (the event loop).
    """

    def __init__(
        self,
        store: SessionStore,
        state: State,
        lease: Lease,
        *,
        compact_every: int = DEFAULT_COMPACT_EVERY,
        clock: Clock = utc_now,
    ) -> None:
        self.state = state
        self._store = store
        self._lease = lease
        self._compact_every = max(compact_every, 1)
        self._clock = clock
        self._closed = False
        self.records_since_compaction = 0
        """Journal records written since the last snapshot."""

    @property
    def lock(self) -> LockInfo:
        return self._lease.info

    def renew(self) -> LockInfo:
        """Extend the lock's lease now (the renewer thread does this every lease/3)."""
        return self._lease.renew()

    def intent(self, kind: str, name: str, action: str, id: str | None) -> None:
        """Before a provider call: mark `kind/name` as pending `action` (creating its
        entry, with no attributes, if the address is new)."""
        data = {"kind": kind, "name": name, "action": action, "id": id, "started": iso(self._clock())}
        self._record(f"{kind}/{name}", "intent", data)

    def succeeded(self, resource: ResourceState) -> None:
        """After a successful create, update or import: store `resource` (a copy, with no
        pending intent, and `updated` set to now if empty)."""
        data = resource.to_json()
        data["pending"] = None
        data["updated"] = data["updated"] or iso(self._clock())
        self._record(resource.address, "put", {"resource": data})

    def removed(self, address: str) -> None:
        """After a delete, or to forget `address`: drop it from state."""
        self._record(address, "remove", {"address": address})

    def failed(self, address: str, message: str) -> None:
        """The provider call for `address` failed: keep its pending intent, with `message`.

        Without a pending intent nothing was in doubt, and nothing is recorded. A message
        that looks like a secret is recorded as "<redacted>"."""
        resource = self.state.resources.get(address)
        if resource is None or resource.pending is None:
            return
        self._record(address, "failed", {"address": address, "message": redact(message)})

    def compact(self) -> None:
        """Write the whole state as a new snapshot (atomically, fsynced) and empty the journal."""
        self._check_open()
        self._lease.ensure_held()
        self.state.fence = max(self.state.fence, self.lock.fence)
        self._store.write_snapshot(self.state)
        self.records_since_compaction = 0

    def close(self) -> None:
        """Stop recording (the journal file is closed). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("this state session is closed; nothing more can be recorded in it")

    def _record(self, address: str, op: str, data: dict[str, Any]) -> None:
        self._check_open()
        try:  # a detached copy, in exactly the shape replay will see (tuples become lists, ...)
            data = scrub_data(json.loads(json.dumps(data)))  # no secret a server echoed is kept
        except (TypeError, ValueError) as error:
            raise StateError(f"cannot record the state of {address}: it is not plain JSON ({error})") from None
        ensure_secret_free(data, f"the state of {address}")
        self._lease.ensure_held()
        record: Record = {"serial": self.state.serial + 1, "fence": self.lock.fence, "op": op, **data}
        self._store.append(record)
        apply_record(self.state, record)
        self.records_since_compaction += 1
        if self.records_since_compaction >= max(self._compact_every, 2 * len(self.state.resources)):
            self.compact()


@contextlib.contextmanager
def run_session(
    store: SessionStore,
    state: State,
    lease: Lease,
    *,
    compact_every: int,
    clock: Clock,
    lease_seconds: float,
    description: str,
    kept_by: str,
) -> Iterator[StateSession]:
    """The session lifecycle every backend shares, once it holds the lock and has read the
    state: compact at the start (stamping the lock's fencing token), renew the lease in the
    background every third of it, compact at the end; after an error, try to compact and,
    when that fails too, leave the journal (`kept_by`, e.g. "the journal file") as the
    record and say so. Always closes the session. The caller releases the lock."""
    session = StateSession(store, state, lease, compact_every=compact_every, clock=clock)
    try:
        session.compact()
        with LeaseRenewer(lease.renew, lease_seconds / 3):
            try:
                yield session
            except BaseException:
                try:
                    session.compact()
                except (StateError, OSError) as error:
                    log.warning(
                        "could not compact state %s after an error (%s); %s keeps every record",
                        description,
                        error,
                        kept_by,
                    )
                raise
            session.compact()
    finally:
        session.close()
