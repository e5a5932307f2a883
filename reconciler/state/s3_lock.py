"""The S3 state lock: a lock object created with If-None-Match, a lease renewed with
If-Match, expired leases taken over by an ETag-conditional delete, and a fence counter
advanced by compare-and-swap.

Objects, next to the state object KEY:
- KEY.lock   JSON LockInfo of the holder; exists exactly while the state is locked.
- KEY.fence  the highest fencing token ever issued (an integer); survives releases.

Protocol (every step is one conditional request, so no two writers can both win):
- take: read KEY.fence (N, its ETag), then PUT KEY.lock with If-None-Match: * holding a
  LockInfo with fence N+1. If that wins, PUT KEY.fence = N+1 with If-Match on the ETag read
  (If-None-Match when there was none); if that loses, someone issued N+1 meanwhile: delete
  our lock (If-Match) and start again. So each fence value belongs to exactly one lock.
- wait: when the lock exists, read it; poll with backoff (0.05 s doubling to 1 s) until
  `timeout`, then LockError.held naming user@host, operation and since (as the local lock).
- take over: a lock whose lease expired (or, on this host, whose process is gone, or that
  is unreadable and older than a lease) is deleted with If-Match on the ETag we read: if
  its holder renewed meanwhile, the delete fails and we read again.
- renew: PUT KEY.lock with If-Match on our last ETag; a 412 means it is not ours any more.
- release and force-unlock: DELETE with If-Match on the ETag of the lock meant.

Emulators: moto 5.2.5's server honours If-None-Match: * and If-Match on PutObject and
If-Match on DeleteObject (412 PreconditionFailed; 404 NoSuchKey when absent), measured;
its check-then-write is not atomic under concurrent requests (real S3's is), which tests
that race writers on moto should keep in mind.

Called by: reconciler.state.s3 (S3Backend).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, timedelta

from reconciler.state.clock import Clock, iso, parse_iso
from reconciler.state.lock import LockError, LockInfo, log, process_alive
from reconciler.state.model import StateError
from reconciler.state.s3_io import Bucket, Found, Precondition

_FIRST_POLL = 0.05
_MAX_POLL = 1.0
_QUICK_RETRIES = 20
"""Immediate retries (lock released, stale lock removed, fence race) before polling."""


def _parse(raw: bytes) -> LockInfo | None:
    try:
        return LockInfo.from_json(json.loads(raw))
    except (ValueError, StateError):
        return None


def _body(info: LockInfo) -> bytes:
    return json.dumps(info.to_json(), indent=2).encode() + b"\n"


class S3Lock:
    """The lock of one S3 state (see the module docstring)."""

    def __init__(self, bucket: Bucket, key: str, *, description: str, lease_seconds: float, clock: Clock) -> None:
        self.bucket = bucket
        self.key = key + ".lock"
        self.fence_key = key + ".fence"
        self.description = description
        self.lease_seconds = lease_seconds
        self.clock = clock

    def _unreadable(self) -> LockError:
        return LockError(
            f"state {self.description} is locked, but its lock object s3://{self.bucket.name}/{self.key} "
            "cannot be read",
            next_step=f"wait for it to finish (--lock-timeout), or if no recon is running: delete "
            f"s3://{self.bucket.name}/{self.key}",
        )

    def current(self) -> LockInfo | None:
        """The current holder; None when unlocked. LockError when the lock object is garbled."""
        found = self.bucket.get(self.key)
        if found is None:
            return None
        info = _parse(found.body)
        if info is None:
            raise self._unreadable()
        return info

    def issued_fence(self) -> tuple[int, str | None]:
        """The highest fencing token issued so far (0 when none) and the counter's ETag."""
        found = self.bucket.get(self.fence_key)
        if found is None:
            return 0, None
        try:
            return int(found.body.decode("ascii").strip()), found.etag
        except (UnicodeDecodeError, ValueError):
            raise StateError(
                f"s3://{self.bucket.name}/{self.fence_key} does not hold a fencing counter",
                next_step=f"if no recon is running, delete s3://{self.bucket.name}/{self.fence_key}; "
                "the next lock starts a new counter",
            ) from None

    def store_fence(self, fence: int, etag: str | None) -> str:
        """Advance the counter to `fence` if it still has ETag `etag`; Precondition if not."""
        return self.bucket.put(self.fence_key, f"{fence}\n".encode(), if_match=etag, create=etag is None)

    # -- taking -----------------------------------------------------------------------

    def acquire(self, operation: str, timeout: float) -> S3HeldLock:
        """Take the lock, waiting up to `timeout` seconds (polling with backoff) while a live
        holder has it; stale locks are taken over on the way. Raises LockError on timeout."""
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = _FIRST_POLL
        quick = 0
        while True:
            held = self._try_create(operation)
            if held is not None:
                return held
            found = self.bucket.get(self.key)
            holder = _parse(found.body) if found is not None else None
            stale = self._stale_reason(holder, found) if found is not None else "released"
            if stale is not None and quick < _QUICK_RETRIES:
                quick += 1
                if found is not None and self.bucket.delete(self.key, if_match=found.etag):
                    who = holder.holder() if holder else "an unknown holder"
                    lock_id = f" (lock ID {holder.id})" if holder else ""
                    log.warning("removed the lock on state %s held by %s%s: %s", self.description, who, lock_id, stale)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if holder is None:
                    raise self._unreadable()
                raise LockError.held(self.description, holder)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_POLL)
            quick = 0

    def _try_create(self, operation: str) -> S3HeldLock | None:
        issued, counter = self.issued_fence()
        info = LockInfo.new(operation, issued + 1, lease_seconds=self.lease_seconds, clock=self.clock)
        try:
            etag = self.bucket.put(self.key, _body(info), create=True)
        except Precondition:
            return None
        try:
            counter = self.store_fence(info.fence, counter)
        except Precondition:  # fence N+1 was issued meanwhile: give this lock back, start again
            self.bucket.delete(self.key, if_match=etag)
            return None
        except BaseException:
            with contextlib.suppress(StateError):
                self.bucket.delete(self.key, if_match=etag)
            raise
        return S3HeldLock(self, info, etag, counter)

    def _stale_reason(self, holder: LockInfo | None, found: Found) -> str | None:
        """Why the lock may be taken over, or None while its holder may still be working."""
        now = self.clock()
        if holder is None:  # garbled: only once it is older than a lease
            if found.modified is None:
                return None
            age = (now - found.modified.astimezone(UTC)).total_seconds()
            return f"its lock object is unreadable and {age:.0f}s old" if age > self.lease_seconds else None
        expires = parse_iso(holder.expires)
        if expires is None or expires <= now:
            return f"its lease expired at {holder.expires}"
        if holder.host == socket.gethostname() and not process_alive(holder.pid, holder.pid_started):
            return f"process {holder.pid} is no longer running"
        return None

    # -- force-unlock -----------------------------------------------------------------

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock whatever holds it, provided its id is `lock_id`."""
        found = self.bucket.get(self.key)
        current = _parse(found.body) if found is not None else None
        if found is None:
            raise LockError(f"state {self.description} is not locked", next_step="nothing to unlock")
        if current is None:
            raise self._unreadable()
        if current.id != lock_id:
            raise LockError(
                f"lock ID {lock_id} does not match the lock on state {self.description}: it is held by "
                f"{current.holder()} for {current.operation} since {current.created}; lock ID {current.id}",
                next_step=f"check that process is gone, then: recon force-unlock {current.id}",
                holder=current,
            )
        if not self.bucket.delete(self.key, if_match=found.etag):
            raise LockError(
                f"the lock {lock_id} on state {self.description} changed while it was being removed",
                next_step="run `recon force-unlock` again with the current lock ID",
            )
        log.warning(
            "removed the lock on state %s held by %s (lock ID %s): force-unlock",
            self.description,
            current.holder(),
            current.id,
        )
        return current


class S3HeldLock:
    """A lock this process holds (the Lease of its sessions): renewal, fence raising,
    the remote ownership check and release. Thread-safe (the renewer thread renews)."""

    def __init__(self, lock: S3Lock, info: LockInfo, etag: str, counter_etag: str) -> None:
        self._lock = lock
        self._info = info
        self._etag = etag
        self._counter_etag = counter_etag
        self._mutex = threading.Lock()
        self._released = False
        self.lost: LockError | None = None
        """Set once the lock is known to be someone else's; every later write is refused."""

    @property
    def info(self) -> LockInfo:
        return self._info

    def renew(self) -> LockInfo:
        """Extend the lease to now + lease. LockError (and `lost` set) if it is not ours."""
        with self._mutex:
            if self.lost is not None:
                raise self.lost
            expires = self._lock.clock() + timedelta(seconds=self._lock.lease_seconds)
            return self._rewrite(replace(self._info, expires=iso(expires)))

    def raise_fence(self, fence: int) -> LockInfo:
        """Re-issue our lock with fencing token `fence` (the state already carries one at
        least as high as ours, e.g. after the counter object was deleted)."""
        with self._mutex:
            try:
                self._counter_etag = self._lock.store_fence(fence, self._counter_etag)
            except Precondition:
                raise self._lose("the fence counter was advanced by someone else") from None
            return self._rewrite(replace(self._info, fence=fence))

    def _rewrite(self, new: LockInfo) -> LockInfo:
        bucket, key = self._lock.bucket, self._lock.key
        for _ in range(2):
            try:
                self._etag = bucket.put(key, _body(new), if_match=self._etag)
            except Precondition:
                found = bucket.get(key)  # ours still, under another ETag (a reply we never saw)?
                current = _parse(found.body) if found is not None else None
                if found is None or current is None or current.id != self._info.id:
                    raise self._lose(self._why(current, found is None)) from None
                self._etag = found.etag
                continue
            self._info = new
            return new
        raise self._lose("its lock object kept changing")

    def verify(self) -> None:
        """Check with S3 that the lock object is still ours (before a snapshot write)."""
        with self._mutex:
            if self.lost is not None:
                raise self.lost
            found = self._lock.bucket.get(self._lock.key)
            current = _parse(found.body) if found is not None else None
            if current is None or current.id != self._info.id:
                raise self._lose(self._why(current, found is None))

    @staticmethod
    def _why(current: LockInfo | None, gone: bool) -> str:
        if gone:
            return "the lock was released (force-unlock?)"
        if current is None:
            return "its lock object is unreadable"
        return f"it is now held by {current.holder()} (lock ID {current.id})"

    def _lose(self, why: str) -> LockError:
        self.lost = LockError.lost(self._lock.description, why)
        return self.lost

    def ensure_held(self) -> None:
        """Raise LockError unless we may still write: not known lost, and the lease not
        expired (an expired lease is renewed first if the lock object is still ours)."""
        if self.lost is not None:
            raise self.lost
        expires = parse_iso(self._info.expires)
        if expires is None or expires <= self._lock.clock():
            self.renew()

    def release(self) -> None:
        """Give the lock back (only if the lock object is still ours). Safe to call twice."""
        with self._mutex:
            if self._released:
                return
            self._released = True
            if not self._lock.bucket.delete(self._lock.key, if_match=self._etag) and self.lost is None:
                log.warning(
                    "the lock on state %s (lock ID %s) was no longer ours at release",
                    self._lock.description,
                    self._info.id,
                )
