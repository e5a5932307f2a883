"""The local state lock: a lock file taken with O_CREAT|O_EXCL, a lease renewed in place,
stale locks broken race-safely, and a persistent fencing counter.

Files, next to the state file STATE:
- STATE.lock   JSON LockInfo of the holder; exists exactly while the state is locked.
- STATE.fence  the highest fencing token ever issued (an integer); survives releases.

Race safety: whoever removes a lock file that may not be theirs (breaking a stale lock,
release, force-unlock) first renames it to a unique name, then checks that the file it
moved is the one it meant to remove; if not (someone else broke and re-took the lock in
between), it puts it back with os.link, which never overwrites. The fence counter is only
written while holding the lock, so it needs no further locking.

Called by: reconciler.state.local (LocalBackend).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from reconciler.state.clock import Clock, iso, parse_iso, utc_now
from reconciler.state.files import storage_errors, write_all, write_atomically
from reconciler.state.lock import DEFAULT_LEASE_SECONDS, LockError, LockInfo, log, process_alive
from reconciler.state.model import StateError

_FIRST_POLL = 0.05
_MAX_POLL = 1.0


def _parse(raw: bytes) -> LockInfo | None:
    try:
        return LockInfo.from_json(json.loads(raw))
    except (ValueError, StateError):
        return None


class LockFile:
    """The lock of one local state. `description` names the state in messages."""

    def __init__(
        self,
        path: Path,
        *,
        fence_path: Path,
        description: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self.path = path
        self.fence_path = fence_path
        self.description = description
        self.lease_seconds = lease_seconds
        self.clock = clock

    # -- reading ----------------------------------------------------------------------

    def current(self) -> LockInfo | None:
        """The current holder; None when unlocked. StateError when the lock file is garbled."""
        with storage_errors("read", self.path):
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
        info = _parse(raw)
        if info is None:
            raise LockError.unreadable(self.description, self.path)
        return info

    def issued_fence(self) -> int:
        """The highest fencing token issued so far (0 when none)."""
        with storage_errors("read", self.fence_path):
            try:
                text = self.fence_path.read_text(encoding="ascii").strip()
            except FileNotFoundError:
                return 0
        try:
            return int(text)
        except ValueError:
            raise StateError(
                f"{self.fence_path} does not hold a fencing counter",
                next_step=f"if no recon is running, delete {self.fence_path}; the next lock starts a new counter",
            ) from None

    # -- taking -----------------------------------------------------------------------

    def acquire(self, operation: str, timeout: float) -> HeldLock:
        """Take the lock, waiting up to `timeout` seconds (polling with backoff) while a live
        holder has it; stale locks are broken on the way. Raises LockError on timeout."""
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = _FIRST_POLL
        while True:
            info = self._try_create(operation)
            if info is not None:
                return HeldLock(self, info)
            with storage_errors("read", self.path):
                try:
                    raw = self.path.read_bytes()
                    modified = self.path.stat().st_mtime
                except FileNotFoundError:
                    continue  # released meanwhile: try again at once
            holder = _parse(raw)
            stale = self._stale_reason(holder, modified)
            if stale is not None:
                self._remove_if(raw.__eq__, why=stale, holder=holder)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if holder is None:
                    raise LockError.unreadable(self.description, self.path)
                raise LockError.held(self.description, holder)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_POLL)

    def _try_create(self, operation: str) -> LockInfo | None:
        with storage_errors("create the lock file", self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return None
            try:
                try:
                    fence = self.issued_fence() + 1
                    self.store_fence(fence)
                    info = LockInfo.new(operation, fence, lease_seconds=self.lease_seconds, clock=self.clock)
                    write_all(fd, json.dumps(info.to_json(), indent=2).encode() + b"\n")
                finally:
                    os.close(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    self.path.unlink()
                raise
        return info

    def store_fence(self, fence: int) -> None:
        with storage_errors("write", self.fence_path):
            write_atomically(self.fence_path, f"{fence}\n".encode(), durable=True)

    def _stale_reason(self, holder: LockInfo | None, modified: float) -> str | None:
        """Why the lock may be broken, or None while its holder may still be working."""
        now = self.clock()
        if holder is None:  # being written right now, or its writer died mid-write
            age = now.timestamp() - modified
            return f"its lock file is unreadable and {age:.0f}s old" if age > self.lease_seconds else None
        expires = parse_iso(holder.expires)
        if expires is None or expires <= now:
            return f"its lease expired at {holder.expires}"
        if holder.host == socket.gethostname() and not process_alive(holder.pid, holder.pid_started):
            return f"process {holder.pid} is no longer running"
        return None

    # -- keeping and giving back ------------------------------------------------------

    def rewrite(self, held: LockInfo, new: LockInfo) -> LockInfo:
        """Replace our lock record `held` by `new` (same id). LockError if it is not ours any more."""
        current = self.current()
        if current is None or current.id != held.id:
            why = (
                "the lock was released"
                if current is None
                else f"it is now held by {current.holder()} (lock ID {current.id})"
            )
            raise LockError.lost(self.description, why)
        with storage_errors("write", self.path):
            write_atomically(self.path, json.dumps(new.to_json(), indent=2).encode() + b"\n", durable=False)
        return new

    def release(self, held: LockInfo) -> bool:
        """Remove the lock file if it is still `held`'s; True when it was removed."""
        return self._remove_if(lambda moved: getattr(_parse(moved), "id", None) == held.id)

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock whatever holds it, provided its id is `lock_id`."""
        current = self.current()
        if current is None:
            raise LockError(f"state {self.description} is not locked", next_step="nothing to unlock")
        if current.id != lock_id:
            raise LockError(
                f"lock ID {lock_id} does not match the lock on state {self.description}: it is held by "
                f"{current.holder()} for {current.operation} since {current.created}; lock ID {current.id}",
                next_step=f"check that process is gone, then: recon force-unlock {current.id}",
                holder=current,
            )
        if not self._remove_if(
            lambda moved: getattr(_parse(moved), "id", None) == lock_id, why="force-unlock", holder=current
        ):
            raise LockError(
                f"the lock {lock_id} on state {self.description} changed while it was being removed",
                next_step="run `recon force-unlock` again with the current lock ID",
            )
        return current

    def _remove_if(self, matches: Callable[[bytes], bool], *, why: str = "", holder: LockInfo | None = None) -> bool:
        """Remove the lock file if its content `matches`, race-safely (see module docstring).
        With `why`, log that someone else's lock was removed."""
        aside = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.removed")
        with storage_errors("remove the lock file", self.path):
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                return False
            if not matches(aside.read_bytes()):
                self._put_back(aside)
                return False
            aside.unlink()
        if why:
            who = holder.holder() if holder else "an unknown holder"
            lock_id = f" (lock ID {holder.id})" if holder else ""
            log.warning("removed the lock on state %s held by %s%s: %s", self.description, who, lock_id, why)
        return True

    def _put_back(self, aside: Path) -> None:
        try:
            os.link(aside, self.path)
        except FileExistsError:
            log.warning("a lock on state %s was displaced while a stale lock was being broken", self.description)
        except OSError:  # no hard links here: a plain rename (may overwrite; rare twice over)
            if not self.path.exists():
                os.rename(aside, self.path)
                return
        aside.unlink(missing_ok=True)


class HeldLock:
    """A lock this process holds: its record, renewal, fence raising and release.

    Thread-safe: the renewer thread and the session's thread may both call `renew`."""

    def __init__(self, file: LockFile, info: LockInfo) -> None:
        self._file = file
        self._info = info
        self._mutex = threading.Lock()
        self._released = False
        self.lost: LockError | None = None
        """Set once the lock is known to be someone else's; every later write is refused."""

    @property
    def info(self) -> LockInfo:
        return self._info

    def renew(self) -> LockInfo:
        """Extend the lease to now + lease_seconds. LockError (and `lost` set) if the lock
        file no longer holds our lock."""
        with self._mutex:
            if self.lost is not None:
                raise self.lost
            expires = self._file.clock() + timedelta(seconds=self._file.lease_seconds)
            self._info = self._rewrite(replace(self._info, expires=iso(expires)))
            return self._info

    def raise_fence(self, fence: int) -> LockInfo:
        """Re-issue our lock with fencing token `fence` (when the state already carries a
        token at least as high as ours, e.g. after the counter file was lost)."""
        with self._mutex:
            self._file.store_fence(fence)
            self._info = self._rewrite(replace(self._info, fence=fence))
            return self._info

    def _rewrite(self, new: LockInfo) -> LockInfo:
        try:
            return self._file.rewrite(self._info, new)
        except LockError as error:
            self.lost = error
            raise

    def ensure_held(self) -> None:
        """Raise LockError unless we may still write: not known lost, and the lease not
        expired (an expired lease is renewed first if the lock file is still ours)."""
        if self.lost is not None:
            raise self.lost
        expires = parse_iso(self._info.expires)
        if expires is None or expires <= self._file.clock():
            self.renew()

    def release(self) -> None:
        """Give the lock back (only if the lock file is still ours). Safe to call twice."""
        with self._mutex:
            if self._released:
                return
            self._released = True
            if not self._file.release(self._info) and self.lost is None:
                log.warning(
                    "the lock on state %s (lock ID %s) was no longer ours at release",
                    self._file.description,
                    self._info.id,
                )
