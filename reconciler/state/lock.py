"""State locks: who holds one (LockInfo), the error people see (LockError), how recon
decides a holder is gone (process liveness) and the thread that keeps a lease alive.

A lock is a lease: it carries `expires` and its holder renews it every lease/3 seconds
(LeaseRenewer), so a holder that vanished without releasing (kill -9, power loss, a CI
runner torn down) frees the state by itself once the lease runs out. On the holder's own
host recon does not even wait that long: a lock whose process is no longer running (or
whose pid now belongs to a process started at another time) is broken at once.

Every lock also carries a fencing token, `fence`: one more than the highest ever issued
for that state. Journal records are stamped with it and replay ignores records from an
older fence once a newer one has written, so a zombie writer that lost its lock (paused
past its lease, then resumed) cannot corrupt the state.

The file-based implementation is reconciler.state.lockfile.

Called by: reconciler.state.lockfile, .backend, .local; the CLI (LockError, force-unlock).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from reconciler.state.clock import Clock, iso
from reconciler.state.model import StateError

DEFAULT_LEASE_SECONDS = 60.0

log = logging.getLogger("recon.state")


def _user() -> str:
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError, ImportError):
        return "unknown"


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds a state lock, for what, until when, and with which fencing token."""

    id: str
    owner: str
    host: str
    pid: int
    operation: str
    created: str
    expires: str
    fence: int
    pid_started: str = ""
    """The holder's process start time (/proc/<pid>/stat field 22) where known, so that a
    reused pid is not mistaken for the holder."""

    @classmethod
    def new(cls, operation: str, fence: int, *, lease_seconds: float, clock: Clock) -> LockInfo:
        now = clock()
        pid = os.getpid()
        started = process_start(pid)
        return cls(
            id=str(uuid.uuid4()),
            owner=_user(),
            host=socket.gethostname(),
            pid=pid,
            operation=operation,
            created=iso(now),
            expires=iso(now + timedelta(seconds=lease_seconds)),
            fence=fence,
            pid_started=started or "",
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> LockInfo:
        """Raises StateError when `data` is not a lock record."""
        if not isinstance(data, dict):
            raise StateError("not a lock record")
        try:
            return cls(
                id=str(data["id"]),
                owner=str(data["owner"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                operation=str(data["operation"]),
                created=str(data["created"]),
                expires=str(data["expires"]),
                fence=int(data["fence"]),
                pid_started=str(data.get("pid_started") or ""),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"not a lock record: {error!r}") from None

    def holder(self) -> str:
        """ "alice@desk-7 (pid 4242)"."""
        return f"{self.owner}@{self.host} (pid {self.pid})"


class LockError(StateError):
    """The state lock could not be taken, released or kept. `holder` is who holds it, if known."""

    def __init__(self, message: str, *, next_step: str = "", holder: LockInfo | None = None) -> None:
        super().__init__(message, next_step=next_step)
        self.holder = holder

    @classmethod
    def held(cls, description: str, holder: LockInfo) -> LockError:
        return cls(
            f"state {description} is locked by {holder.holder()} for {holder.operation} "
            f"since {holder.created}; lock ID {holder.id}",
            next_step=f"wait for it to finish (--lock-timeout), or if that process is gone: recon force-unlock {holder.id}",
            holder=holder,
        )

    @classmethod
    def unreadable(cls, description: str, lock_path: Path) -> LockError:
        return cls(
            f"state {description} is locked, but its lock file {lock_path} cannot be read",
            next_step=f"wait for it to finish (--lock-timeout), or if no recon is running: delete {lock_path}",
        )

    @classmethod
    def lost(cls, description: str, why: str) -> LockError:
        return cls(
            f"this recon lost its lock on state {description}: {why}",
            next_step="nothing more was written after the lock was lost; run `recon plan` again to see where things stand",
        )


def process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), else None."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name), or None where unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    _, _, rest = text.rpartition(")")
    return rest.split() or None


def process_alive(pid: int, started: str = "") -> bool:
    """Whether process `pid` on this host is still the one that took the lock.

    False when it does not exist, is a zombie, or (where /proc says) started at another
    time than `started` — its pid was reused. Errs towards True when unsure."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there; rely on the lease
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return True
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] == "Z":
        return False
    return not (started and len(fields) > 19 and fields[19] != started)


class LeaseRenewer:
    """A daemon thread calling `renew` every `interval` seconds until stopped or until
    `renew` raises LockError (the lock is no longer ours). Use as a context manager."""

    def __init__(self, renew: Callable[[], object], interval: float) -> None:
        self._renew = renew
        self._interval = max(interval, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recon-lease-renewer", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._renew()
            except LockError as error:
                log.error("%s", error.message)
                return
            except (StateError, OSError) as error:
                log.warning("could not renew the state lock (will retry): %s", error)

    def __enter__(self) -> LeaseRenewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(timeout=5)
