"""The S3 state backend against a real moto server over HTTP on loopback: reading, the
journal objects and compaction, serial and lineage, a crash mid-apply, the lock (contention,
waiting, expired leases, fencing, force-unlock), bucket checks and the secret guard."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from reconciler.state import LockError, ResourceState, S3Backend, S3Settings, State, StateError
from reconciler.state.clock import iso, parse_iso

HOST = socket.gethostname()
KEY = "desks/energy/state.json"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1, port chosen by the OS (read back from the bound socket)."""
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    quiet.setLevel(level)


def make_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1", **CREDENTIALS)


@pytest.fixture
def s3(endpoint: str) -> Any:
    return make_client(endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh versioned bucket."""
    name = f"recon-state-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Make = Callable[..., S3Backend]


@pytest.fixture
def make(endpoint: str, bucket: str, clock: FakeClock) -> Make:
    def build(**options: Any) -> S3Backend:
        return S3Backend(bucket, KEY, make_client(endpoint), **{"clock": clock, **options})

    return build


@pytest.fixture
def backend(make: Make) -> S3Backend:
    return make()


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def their_lock(now: datetime, **overrides: Any) -> dict[str, Any]:
    """Someone else's lock record (another host), valid for another minute from `now`."""
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


def put_lock(s3: Any, bucket: str, record: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=KEY + ".lock", Body=json.dumps(record).encode())
    s3.put_object(Bucket=bucket, Key=KEY + ".fence", Body=f"{record['fence']}\n".encode())


@pytest.fixture
def notices(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    with caplog.at_level(logging.WARNING, logger="recon.state"):
        yield lambda: [r.getMessage() for r in caplog.records if r.name == "recon.state"]


def queue(name: str, **attributes: Any) -> ResourceState:
    return ResourceState("Queue", name, f"id-{name}", {"name": name, **attributes})


# -- reading and writing


def test_an_empty_state_reads_as_new_and_writes_nothing(backend: S3Backend, s3: Any, bucket: str) -> None:
    state = backend.read()
    assert (state.serial, state.resources, state.fence) == (0, {}, 0)
    assert backend.current_lock() is None
    assert keys(s3, bucket) == []
    assert backend.description == f"s3://{bucket}/{KEY}"


def test_a_session_writes_a_snapshot_in_the_local_format(backend: S3Backend, s3: Any, bucket: str) -> None:
    with backend.lock("apply", timeout=0) as session:
        session.intent("Queue", "gas", "create", None)
        session.succeeded(queue("gas"))
        session.succeeded(queue("power"))
        session.removed("Queue/power")
        lineage = session.state.lineage
    assert keys(s3, bucket) == [KEY, KEY + ".fence"], "no lock and no journal objects left"
    stored = get_json(s3, bucket, KEY)
    assert stored == State.from_json(stored, source="s3").to_json()
    assert (stored["serial"], stored["lineage"], stored["fence"], list(stored["resources"])) == (
        4,
        lineage,
        1,
        ["Queue/gas"],
    )
    again = backend.read()
    assert (again.serial, again.lineage, set(again.resources)) == (4, lineage, {"Queue/gas"})

    with backend.lock("apply", timeout=0) as session:
        assert (session.state.serial, session.state.lineage, session.lock.fence) == (4, lineage, 2)
        session.succeeded(queue("carbon"))
    after = backend.read()
    assert (after.serial, after.lineage, after.fence, set(after.resources)) == (
        5,
        lineage,
        2,
        {"Queue/gas", "Queue/carbon"},
    )


def test_each_record_is_one_journal_object_until_compaction(make: Make, s3: Any, bucket: str) -> None:
    backend = make(compact_every=3)
    with backend.lock("apply", timeout=0) as session:
        session.succeeded(queue("a"))
        session.succeeded(queue("a", description="v2"))
        assert keys(s3, bucket, KEY + ".journal/") == [
            f"{KEY}.journal/{session.lock.fence:010d}/{serial:012d}" for serial in (1, 2)
        ]
        assert get_json(s3, bucket, KEY)["serial"] == 0, "the snapshot is not rewritten per record"
        seen = make().read()  # another reader, mid-session: snapshot + journal
        assert (seen.serial, seen.resources["Queue/a"].attributes["description"]) == (2, "v2")
        session.succeeded(queue("a", description="v3"))  # the third record compacts
        assert keys(s3, bucket, KEY + ".journal/") == []
        assert get_json(s3, bucket, KEY)["serial"] == 3


CRASH = """
import os, sys
import boto3
from reconciler.state import ResourceState, S3Backend
client = boto3.client("s3", endpoint_url=sys.argv[1], region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
backend = S3Backend(sys.argv[2], sys.argv[3], client)
locked = backend.lock("apply", timeout=0)
session = locked.__enter__()
session.succeeded(ResourceState("Queue", "gas", "id-gas", {"name": "gas"}))
session.intent("Queue", "power", "create", None)
print(session.lock.id, flush=True)
os._exit(9)  # killed mid-apply: no compaction, no release
"""


def test_a_crash_mid_apply_loses_no_completed_change(
    make: Make, s3: Any, bucket: str, endpoint: str, notices: Callable[[], list[str]]
) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, endpoint, bucket, KEY], capture_output=True, text=True, timeout=60, check=False
    )
    assert crashed.returncode == 9, crashed.stderr
    lock_id = crashed.stdout.strip()

    backend = make(clock=lambda: datetime.now(UTC))
    state = backend.read()
    assert state.serial == 2
    assert state.resources["Queue/gas"].id == "id-gas"
    pending = state.resources["Queue/power"].pending
    assert pending is not None and pending.action == "create", "the interrupted create is in doubt"
    holder = backend.current_lock()
    assert holder is not None and holder.id == lock_id

    with backend.lock("apply", timeout=0) as session:  # its process is gone: broken at once
        assert session.state.serial == 2 and set(session.state.resources) == {"Queue/gas", "Queue/power"}
        assert keys(s3, bucket, KEY + ".journal/") == [], "folded into the snapshot at session start"
        assert session.lock.fence == holder.fence + 1
    assert any("is no longer running" in n and lock_id in n for n in notices())


def test_journal_objects_without_a_snapshot_are_an_error(backend: S3Backend, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key=f"{KEY}.journal/{1:010d}/{1:012d}", Body=b"{}\n")
    with pytest.raises(StateError, match=r"journal objects exist .* but the snapshot .* does not"):
        backend.read()


def test_a_garbled_journal_object_names_itself(backend: S3Backend, s3: Any, bucket: str) -> None:
    with backend.lock("apply", timeout=0) as session:
        session.succeeded(queue("a"))
    name = f"{KEY}.journal/{1:010d}/{9:012d}"
    s3.put_object(Bucket=bucket, Key=name, Body=b'{"serial": 9, "fen')
    with pytest.raises(StateError, match=f"s3://{bucket}/{name} is not a valid journal record"):
        backend.read()


def test_a_snapshot_of_another_lineage_is_never_overwritten(backend: S3Backend, s3: Any, bucket: str) -> None:
    other = State.new()
    with pytest.raises(StateError, match=f"it has lineage {other.lineage}"), backend.lock("apply", 0) as session:
        session.succeeded(queue("a"))
        s3.put_object(Bucket=bucket, Key=KEY, Body=json.dumps(other.to_json()).encode())  # someone swapped it
    assert get_json(s3, bucket, KEY)["lineage"] == other.lineage


def test_secrets_are_refused_and_nothing_is_written(backend: S3Backend, s3: Any, bucket: str) -> None:
    with backend.lock("apply", timeout=0) as session:
        with pytest.raises(StateError, match="refusing to write the state of Queue/a"):
            session.succeeded(queue("a", note="AKIAIOSFODNN7EXAMPLE"))
        assert keys(s3, bucket, KEY + ".journal/") == []
        session.state.resources["Queue/b"] = queue("b", key="AKIAIOSFODNN7EXAMPLE")  # bypassing the session
        with pytest.raises(StateError, match=f"refusing to write state s3://{bucket}/{KEY}"):
            session.compact()
        del session.state.resources["Queue/b"]
    assert b"AKIA" not in s3.get_object(Bucket=bucket, Key=KEY)["Body"].read()


# -- the bucket


def test_an_unversioned_bucket_is_refused_and_left_alone(endpoint: str, s3: Any) -> None:
    name = f"recon-plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    backend = S3Backend(name, KEY, make_client(endpoint))
    with pytest.raises(StateError) as raised:
        backend.read()
    assert f"the state bucket {name} does not have versioning enabled" in raised.value.message
    assert f"put-bucket-versioning --bucket {name}" in raised.value.next_step
    assert "Status" not in s3.get_bucket_versioning(Bucket=name), "recon never changes the bucket"
    with pytest.raises(StateError, match="versioning"), backend.lock("apply", timeout=0):
        pass
    assert keys(s3, name) == []


def test_a_missing_bucket_is_named_or_created_for_the_sandbox(endpoint: str, s3: Any) -> None:
    name = f"recon-missing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(StateError) as raised:
        S3Backend(name, KEY, make_client(endpoint)).read()
    assert raised.value.message == f"the state bucket {name} does not exist (state s3://{name}/{KEY})"
    assert "create-bucket" in raised.value.next_step

    settings = S3Settings(endpoint_url=endpoint, region="eu-west-1", create_bucket=True, **_keys())
    sandbox = S3Backend.from_settings(name, KEY, settings)
    assert sandbox.read().serial == 0
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"


def _keys() -> dict[str, str]:
    return {"access_key_id": "testing", "secret_access_key": "testing"}


# -- the lock


def test_a_held_lock_makes_others_wait_then_fail_naming_the_holder(make: Make, endpoint: str) -> None:
    holding, release = threading.Event(), threading.Event()
    held: list[Any] = []

    def hold() -> None:
        with make().lock("apply", timeout=0) as session:
            held.append(session.lock)
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        with pytest.raises(LockError) as raised, make().lock("plan", timeout=0.4):
            pass
        assert time.monotonic() - started >= 0.4, "it waited for its timeout"
    finally:
        release.set()
        holder.join(30)
    (info,) = held
    assert raised.value.message == (
        f"state s3://{make().bucket.name}/{KEY} is locked by {info.owner}@{HOST} (pid {os.getpid()}) "
        f"for apply since {info.created}; lock ID {info.id}"
    )
    assert raised.value.holder == info
    assert f"recon force-unlock {info.id}" in raised.value.next_step


def test_a_waiter_gets_the_lock_once_it_is_released(backend: S3Backend, bucket: str, endpoint: str) -> None:
    waiter_client = make_client(endpoint)
    refused = threading.Event()

    def on_put(http_response: Any, **_: Any) -> None:
        if http_response.status_code == 412:
            refused.set()  # the waiter found the lock taken and is now polling

    waiter_client.meta.events.register("after-call.s3.PutObject", on_put)
    waiter_backend = S3Backend(bucket, KEY, waiter_client)
    got: list[int] = []

    def wait_for_it() -> None:
        with waiter_backend.lock("apply", timeout=30) as session:
            got.append(session.lock.fence)

    with backend.lock("apply", timeout=0) as first:
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        assert refused.wait(30)
        fence = first.lock.fence
    waiter.join(30)
    assert got == [fence + 1]


def test_an_expired_lease_is_taken_over(
    backend: S3Backend, s3: Any, bucket: str, clock: FakeClock, notices: Callable[[], list[str]]
) -> None:
    put_lock(s3, bucket, their_lock(clock() - timedelta(seconds=120)))  # expired a minute ago
    with backend.lock("apply", timeout=0) as session:
        assert session.lock.fence == 8
        assert get_json(s3, bucket, KEY + ".lock")["id"] == session.lock.id
    assert any(
        "held by bob@build-agent-9 (pid 4242) (lock ID their-lock-id): its lease expired" in n for n in notices()
    )


def test_a_live_lease_elsewhere_is_not_taken_over(backend: S3Backend, s3: Any, bucket: str, clock: FakeClock) -> None:
    put_lock(s3, bucket, their_lock(clock()))
    with pytest.raises(LockError, match=r"locked by bob@build-agent-9 \(pid 4242\) for apply"):
        backend.lock("apply", timeout=0).__enter__()
    assert get_json(s3, bucket, KEY + ".lock")["id"] == "their-lock-id"


def test_renewal_extends_the_lease_by_a_conditional_write(backend: S3Backend, clock: FakeClock) -> None:
    with backend.lock("apply", timeout=0) as session:
        first = session.lock
        clock.advance(30)
        renewed = session.renew()
        assert parse_iso(renewed.expires) == clock() + timedelta(seconds=60)
        assert backend.current_lock() == renewed
        assert (renewed.id, renewed.fence) == (first.id, first.fence)
        clock.advance(600)  # the lease ran out while the laptop slept; still ours: renewed before writing
        session.succeeded(queue("a"))
        assert parse_iso(session.lock.expires) == clock() + timedelta(seconds=60)


def test_a_session_whose_lock_was_taken_over_writes_nothing_more(
    backend: S3Backend, s3: Any, bucket: str, clock: FakeClock
) -> None:
    with pytest.raises(LockError, match="lost its lock"), backend.lock("apply", timeout=0) as session:
        session.succeeded(queue("a"))
        snapshot = s3.get_object(Bucket=bucket, Key=KEY)["Body"].read()
        journal = keys(s3, bucket, KEY + ".journal/")
        put_lock(s3, bucket, their_lock(clock(), fence=session.lock.fence + 1))
        with pytest.raises(LockError, match=r"lost its lock.*held by bob@build-agent-9"):
            session.renew()
        with pytest.raises(LockError, match="lost its lock"):
            session.intent("Queue", "b", "create", None)
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == snapshot
    assert keys(s3, bucket, KEY + ".journal/") == journal
    assert get_json(s3, bucket, KEY + ".lock")["id"] == "their-lock-id", "their lock is left alone"


def test_a_session_never_compacts_over_a_newer_fence(backend: S3Backend, s3: Any, bucket: str) -> None:
    with pytest.raises(LockError, match=r"a newer lock \(fence 2\) was issued"), backend.lock("apply", 0) as session:
        session.succeeded(queue("a"))
        snapshot = s3.get_object(Bucket=bucket, Key=KEY)["Body"].read()
        s3.put_object(Bucket=bucket, Key=KEY + ".fence", Body=b"2\n")
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == snapshot
    assert set(backend.read().resources) == {"Queue/a"}, "the journal still has the record"


def test_fences_grow_and_a_lost_counter_restarts_above_the_state(backend: S3Backend, s3: Any, bucket: str) -> None:
    fences = []
    for _ in range(3):
        with backend.lock("apply", timeout=0) as session:
            fences.append(session.lock.fence)
    assert fences == [1, 2, 3]
    s3.delete_object(Bucket=bucket, Key=KEY + ".fence")
    with backend.lock("apply", timeout=0) as session:
        assert session.lock.fence == 4
    assert s3.get_object(Bucket=bucket, Key=KEY + ".fence")["Body"].read() == b"4\n"


def test_force_unlock(backend: S3Backend, s3: Any, bucket: str, clock: FakeClock) -> None:
    with pytest.raises(LockError, match="is not locked"):
        backend.force_unlock("anything")
    put_lock(s3, bucket, their_lock(clock()))
    with pytest.raises(LockError) as raised:
        backend.force_unlock("WRONGID")
    assert "does not match" in raised.value.message and "lock ID their-lock-id" in raised.value.message
    assert get_json(s3, bucket, KEY + ".lock")["id"] == "their-lock-id"
    removed = backend.force_unlock("their-lock-id")
    assert (removed.id, removed.owner, removed.host) == ("their-lock-id", "bob", "build-agent-9")
    assert backend.current_lock() is None
    with backend.lock("apply", timeout=0) as session:
        assert session.lock.fence == 8


def test_release_leaves_someone_elses_lock_alone(backend: S3Backend, s3: Any, bucket: str, clock: FakeClock) -> None:
    with pytest.raises(LockError), backend.lock("apply", timeout=0):
        put_lock(s3, bucket, their_lock(clock(), fence=9))  # ours was taken over meanwhile
    assert get_json(s3, bucket, KEY + ".lock")["id"] == "their-lock-id"
