"""recon's state: what it last applied, per resource, and the lock that serialises applies.

- model      State, ResourceState, Pending, StateError: the data and its JSON form.
- backend    StateBackend (protocol) and StateSession: read, lock, record, compact.
- local      LocalBackend: snapshot + append-only journal + lock file on local disk.
- journal    the journal record format and its replay rules (fencing, torn writes).
- lock       LockInfo, LockError, process liveness, the lease renewer thread.
- lockfile   the local lock file: O_EXCL acquire, stale-lock breaking, fence counter.
- s3         S3Backend, S3Settings: snapshot + journal objects + conditional-write lock in a
             versioned bucket (s3_lock: the lock protocol; s3_io: the S3 calls).
- guard      refuses to write anything that looks like a secret.
- clock, files  timestamps and careful file writes.

Called by: reconciler.engine (plan/apply/import/drift) and the CLI (state, force-unlock).
"""

from reconciler.state.backend import DEFAULT_COMPACT_EVERY, StateBackend, StateSession
from reconciler.state.local import LocalBackend
from reconciler.state.lock import DEFAULT_LEASE_SECONDS, LockError, LockInfo
from reconciler.state.model import STATE_VERSION, Pending, ResourceState, State, StateError
from reconciler.state.s3 import S3Backend, S3Settings

__all__ = [
    "DEFAULT_COMPACT_EVERY",
    "DEFAULT_LEASE_SECONDS",
    "STATE_VERSION",
    "LocalBackend",
    "LockError",
    "LockInfo",
    "Pending",
    "ResourceState",
    "S3Backend",
    "S3Settings",
    "State",
    "StateBackend",
    "StateError",
    "StateSession",
]
