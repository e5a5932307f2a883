"""The local state lock: contention, stale-lock breaking, force-unlock, release, lease
renewal and fencing."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ReconError
from reconciler.state import LocalBackend, LockError, LockInfo, ResourceState, StateError
from reconciler.state.clock import iso, parse_iso
from reconciler.state.lock import LeaseRenewer, process_alive, process_start

HOST = socket.gethostname()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".recon" / "state.json"


@pytest.fixture
def backend(state_path: Path, clock: FakeClock) -> LocalBackend:
    return LocalBackend(state_path, clock=clock)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


Notices = Callable[[], list[str]]


@pytest.fixture
def notices(caplog: pytest.LogCaptureFixture) -> Iterator[Notices]:
    """notices(): the warnings logged on recon.state so far."""
    with caplog.at_level(logging.WARNING, logger="recon.state"):
        yield lambda: [r.getMessage() for r in caplog.records if r.name == "recon.state"]


def their_lock(now: datetime, **overrides: Any) -> dict[str, Any]:
    """Someone else's lock record, valid for another minute from `now`."""
    record = {
        "id": "their-lock-id",
        "owner": "bob",
        "host": "build-agent-9",
        "pid": 4242,
        "operation": "apply",
        "created": iso(now),
        "expires": iso(now + timedelta(seconds=60)),
        "fence": 7,
    }
    return record | overrides


def write_lock(backend: LocalBackend, record: dict[str, Any]) -> None:
    backend.lock_path.parent.mkdir(parents=True, exist_ok=True)
    backend.lock_path.write_text(json.dumps(record))


# -- contention


def test_a_held_lock_says_who_holds_it(backend: LocalBackend, state_path: Path, clock: FakeClock) -> None:
    with backend.lock("apply", timeout=0) as session:
        held = session.lock
        with pytest.raises(LockError) as raised, LocalBackend(state_path, clock=clock).lock("plan", timeout=0):
            pass
    error = raised.value
    assert isinstance(error, StateError) and isinstance(error, ReconError)
    assert error.message == (
        f"state {state_path} is locked by {held.owner}@{HOST} (pid {os.getpid()}) "
        f"for apply since {held.created}; lock ID {held.id}"
    )
    assert error.next_step == (
        f"wait for it to finish (--lock-timeout), or if that process is gone: recon force-unlock {held.id}"
    )
    assert error.holder == held
    assert backend.current_lock() is None, "released on exit"


def test_a_lock_waits_up_to_its_timeout(backend: LocalBackend, state_path: Path, clock: FakeClock) -> None:
    with backend.lock("apply", timeout=0):
        started = time.monotonic()
        with (
            pytest.raises(LockError, match="is locked by"),
            LocalBackend(state_path, clock=clock).lock("plan", timeout=0.3),
        ):
            pass
        assert time.monotonic() - started >= 0.3


def test_current_lock(backend: LocalBackend) -> None:
    assert backend.current_lock() is None
    with backend.lock("import", timeout=0) as session:
        current = backend.current_lock()
        assert current == session.lock
        assert (current.operation, current.host, current.pid, current.fence) == ("import", HOST, os.getpid(), 1)
    backend.lock_path.write_text("{garbled")
    with pytest.raises(LockError, match="cannot be read"):
        backend.current_lock()


# -- stale locks are broken, live ones are not

Make = Callable[[datetime, int], dict[str, Any]]

STALE: dict[str, Make] = {
    "a dead process on this host": lambda now, dead: their_lock(now, host=HOST, pid=dead),
    "an expired lease on another host": lambda now, dead: their_lock(now, expires=iso(now - timedelta(seconds=1))),
    "an expired lease of a live process on this host": lambda now, dead: their_lock(
        now, host=HOST, pid=os.getpid(), expires=iso(now - timedelta(seconds=1))
    ),
    "a lease that is not a timestamp": lambda now, dead: their_lock(now, expires="whenever"),
}

LIVE: dict[str, Make] = {
    "a live process on this host with an unexpired lease": lambda now, dead: their_lock(
        now, host=HOST, pid=os.getpid()
    ),
    "another host with an unexpired lease (its pid means nothing here)": lambda now, dead: their_lock(now, pid=dead),
}


@pytest.mark.parametrize("make", STALE.values(), ids=STALE.keys())
def test_a_stale_lock_is_broken(
    backend: LocalBackend, clock: FakeClock, dead_pid: int, notices: Notices, make: Make
) -> None:
    write_lock(backend, make(clock(), dead_pid))
    with backend.lock("apply", timeout=0) as session:
        assert session.lock.id != "their-lock-id"
    assert len(notices()) == 1
    assert "removed the lock on state" in notices()[0] and "bob@" in notices()[0] and "their-lock-id" in notices()[0]


@pytest.mark.skipif(process_start(os.getpid()) is None, reason="needs /proc/<pid>/stat")
def test_a_reused_pid_is_not_the_holder(backend: LocalBackend, clock: FakeClock, notices: Notices) -> None:
    write_lock(backend, their_lock(clock(), host=HOST, pid=os.getpid(), pid_started="1"))
    with backend.lock("apply", timeout=0):
        pass
    assert "is no longer running" in notices()[0]


@pytest.mark.parametrize("make", LIVE.values(), ids=LIVE.keys())
def test_a_live_lock_is_not_broken(backend: LocalBackend, clock: FakeClock, dead_pid: int, make: Make) -> None:
    record = make(clock(), dead_pid)
    write_lock(backend, record)
    with pytest.raises(LockError, match="lock ID their-lock-id"), backend.lock("apply", timeout=0):
        pass
    assert json.loads(backend.lock_path.read_text()) == record


UNREADABLE = {
    "an unreadable lock file older than the lease is broken": (120, True),
    "an unreadable lock file just written is being written: wait": (0, False),
}


@pytest.mark.parametrize(("age", "broken"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_lock_file(backend: LocalBackend, clock: FakeClock, age: int, broken: bool) -> None:
    backend.lock_path.parent.mkdir(parents=True)
    backend.lock_path.write_bytes(b"")
    moment = clock().timestamp() - age
    os.utime(backend.lock_path, (moment, moment))
    if broken:
        with backend.lock("apply", timeout=0):
            pass
    else:
        with pytest.raises(LockError, match="cannot be read") as raised, backend.lock("apply", timeout=0):
            pass
        assert f"delete {backend.lock_path}" in raised.value.next_step


def test_process_liveness(dead_pid: int) -> None:
    assert process_alive(os.getpid())
    assert not process_alive(dead_pid)
    assert not process_alive(0)


# -- force-unlock and release

FORCE: dict[str, tuple[dict[str, Any] | None, str, str | None]] = {
    "nothing to unlock": (None, "their-lock-id", r"is not locked"),
    "a wrong lock ID names the current one": (
        {},
        "not-the-id",
        r"lock ID not-the-id does not match.*lock ID their-lock-id",
    ),
    "the right lock ID removes it": ({}, "their-lock-id", None),
}


@pytest.mark.parametrize(("lock", "lock_id", "error"), FORCE.values(), ids=FORCE.keys())
def test_force_unlock(
    backend: LocalBackend,
    clock: FakeClock,
    notices: Notices,
    lock: dict[str, Any] | None,
    lock_id: str,
    error: str | None,
) -> None:
    if lock is not None:
        write_lock(backend, their_lock(clock(), **lock))
    if error:
        with pytest.raises(LockError, match=error):
            backend.force_unlock(lock_id)
        assert backend.lock_path.exists() == (lock is not None)
    else:
        removed = backend.force_unlock(lock_id)
        assert isinstance(removed, LockInfo) and removed.id == lock_id
        assert backend.current_lock() is None
        assert "force-unlock" in notices()[0]


def test_release_leaves_someone_elses_lock_alone(backend: LocalBackend, clock: FakeClock, notices: Notices) -> None:
    with backend.lock("apply", timeout=0):
        write_lock(backend, their_lock(clock(), host=HOST, pid=os.getpid()))  # ours was broken and re-taken
    assert json.loads(backend.lock_path.read_text())["id"] == "their-lock-id"
    assert any("no longer ours" in n for n in notices())


def test_a_session_whose_lock_was_taken_over_writes_nothing_more(backend: LocalBackend, clock: FakeClock) -> None:
    with pytest.raises(LockError, match="lost its lock"), backend.lock("apply", timeout=0) as session:
        session.succeeded(ResourceState("Bucket", "a", "id-a", {}))
        snapshot, journal = backend.path.read_bytes(), backend.journal_path.read_bytes()
        write_lock(backend, their_lock(clock(), fence=session.lock.fence + 1))
        with pytest.raises(LockError, match=r"lost its lock.*held by bob@build-agent-9"):
            session.renew()
        with pytest.raises(LockError, match="lost its lock"):
            session.intent("Bucket", "b", "create", None)
    assert (backend.path.read_bytes(), backend.journal_path.read_bytes()) == (snapshot, journal)
    assert json.loads(backend.lock_path.read_text())["id"] == "their-lock-id"


def test_a_session_never_compacts_over_a_newer_fence(backend: LocalBackend, clock: FakeClock) -> None:
    with pytest.raises(LockError, match=r"a newer lock \(fence 2\) was issued"), backend.lock("apply", 0) as session:
        session.succeeded(ResourceState("Bucket", "a", "id-a", {}))
        snapshot = backend.path.read_bytes()
        backend.fence_path.write_text("2\n")  # a newer holder took the lock meanwhile
    assert backend.path.read_bytes() == snapshot
    assert set(backend.read().resources) == {"Bucket/a"}, "the journal still has the record"


# -- leases


def test_renewal_extends_the_lease(backend: LocalBackend, clock: FakeClock) -> None:
    with backend.lock("apply", timeout=0) as session:
        first = session.lock
        assert parse_iso(first.expires) == clock() + timedelta(seconds=60)
        clock.advance(30)
        renewed = session.renew()
        assert parse_iso(renewed.expires) == clock() + timedelta(seconds=60)
        assert session.lock == renewed == backend.current_lock()
        assert (renewed.id, renewed.created, renewed.fence) == (first.id, first.created, first.fence)


def test_an_expired_lease_still_ours_is_renewed_before_writing(backend: LocalBackend, clock: FakeClock) -> None:
    with backend.lock("apply", timeout=0) as session:
        clock.advance(600)  # e.g. the laptop slept
        session.succeeded(ResourceState("Bucket", "a", "id-a", {}))
        assert parse_iso(session.lock.expires) == clock() + timedelta(seconds=60)


def test_the_lease_renewer_thread_calls_renew_until_stopped() -> None:
    renewed = threading.Event()
    with LeaseRenewer(renewed.set, interval=0.01):
        assert renewed.wait(timeout=10)


def test_the_lease_length_is_configurable(state_path: Path, clock: FakeClock) -> None:
    with LocalBackend(state_path, lease_seconds=5, clock=clock).lock("apply", 0) as session:
        assert parse_iso(session.lock.expires) == clock() + timedelta(seconds=5)


# -- fencing tokens


def test_each_lock_gets_a_higher_fence_that_survives_releases(backend: LocalBackend) -> None:
    fences = []
    for _ in range(3):
        with backend.lock("apply", timeout=0) as session:
            fences.append(session.lock.fence)
    assert fences == [1, 2, 3]
    assert backend.read().fence == 3
    assert backend.fence_path.read_text() == "3\n"


def test_a_lost_fence_counter_restarts_above_the_state(backend: LocalBackend) -> None:
    for _ in range(2):
        with backend.lock("apply", timeout=0):
            pass
    backend.fence_path.unlink()
    with backend.lock("apply", timeout=0) as session:
        assert session.lock.fence == 3
        assert backend.current_lock() == session.lock
    assert backend.fence_path.read_text() == "3\n"


def test_records_carry_the_fence_of_their_lock(backend: LocalBackend) -> None:
    with backend.lock("apply", timeout=0):
        pass
    with backend.lock("apply", timeout=0) as session:
        session.intent("Bucket", "a", "create", None)
        record = json.loads(backend.journal_path.read_text())
        assert (record["fence"], record["serial"], record["op"]) == (2, 1, "intent")
        pending = session.state.resources["Bucket/a"].pending
        assert pending is not None and pending.fence == 2
