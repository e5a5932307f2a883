"""The local state backend's data path: sessions, journal replay, fencing, compaction and
the secret guard."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.state import LocalBackend, ResourceState, State, StateBackend, StateError, StateSession

WriteSnapshot = Callable[..., None]


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".recon" / "state.json"


@pytest.fixture
def write_snapshot(state_path: Path) -> WriteSnapshot:
    """Write a snapshot by hand: write_snapshot(serial=3, fence=2)."""

    def write(*, serial: int = 0, fence: int = 0) -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(State("lineage-1", serial=serial, fence=fence).to_json()) + "\n")

    return write


def put(serial: int, fence: int, name: str) -> dict[str, Any]:
    """A journal record storing Bucket/<name>."""
    resource = {"kind": "Bucket", "name": name, "id": f"id-{name}", "attributes": {}, "updated": "t"}
    return {"serial": serial, "fence": fence, "op": "put", "resource": resource}


def journal(*records: dict[str, Any] | bytes) -> bytes:
    """Journal content: dicts as JSON lines, bytes verbatim (torn or garbled lines)."""
    return b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in records)


def bucket(name: str, **attributes: Any) -> ResourceState:
    return ResourceState("Bucket", name, f"id-{name}", dict(attributes))


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: content and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


# -- sessions: every method records one event, and what is read back equals what was recorded


@dataclass
class Scenario:
    ops: list[tuple[Any, ...]]
    expect: dict[str, dict[str, Any]]
    """address -> expected fields (pending action/message, id, attributes, applied)."""
    records: int = -1
    """How many journal records the ops write (default: one per op)."""
    absent: list[str] = field(default_factory=list)


SCENARIOS = {
    "create succeeds: pending cleared, updated stamped": Scenario(
        [("intent", "Bucket", "a", "create", None), ("succeeded", bucket("a", size=1))],
        {"Bucket/a": {"pending": None, "id": "id-a", "attributes": {"size": 1}, "applied": True}},
    ),
    "create fails: the pending intent stays, with the message": Scenario(
        [("intent", "Bucket", "b", "create", None), ("failed", "Bucket/b", "throttled")],
        {"Bucket/b": {"pending": ("create", "throttled"), "id": None, "attributes": {}, "applied": False}},
    ),
    "update in flight keeps the last applied attributes": Scenario(
        [("succeeded", bucket("c", size=1)), ("intent", "Bucket", "c", "update", "id-c2")],
        {"Bucket/c": {"pending": ("update", ""), "id": "id-c2", "attributes": {"size": 1}, "applied": True}},
    ),
    "delete after its intent removes the entry": Scenario(
        [("succeeded", bucket("d")), ("intent", "Bucket", "d", "delete", "id-d"), ("removed", "Bucket/d")],
        {},
        absent=["Bucket/d"],
    ),
    "forget without an intent removes the entry": Scenario(
        [("succeeded", bucket("e")), ("removed", "Bucket/e")], {}, absent=["Bucket/e"]
    ),
    "failed without a pending intent records nothing": Scenario(
        [("succeeded", bucket("f")), ("failed", "Bucket/f", "boom"), ("failed", "Bucket/nowhere", "boom")],
        {"Bucket/f": {"pending": None, "id": "id-f", "attributes": {}, "applied": True}},
        records=1,
    ),
    "a failure message that looks like a secret is redacted": Scenario(
        [("intent", "Bucket", "g", "create", None), ("failed", "Bucket/g", "bad key AKIAIOSFODNN7EXAMPLE")],
        {"Bucket/g": {"pending": ("create", "<redacted>"), "id": None, "attributes": {}, "applied": False}},
    ),
}


def run(session: StateSession, op: tuple[Any, ...]) -> None:
    method, *args = op
    getattr(session, method)(*args)


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_session_records_round_trip(state_path: Path, scenario: Scenario) -> None:
    backend: StateBackend = LocalBackend(state_path)
    with backend.lock("apply", timeout=0) as session:
        lineage, start = session.state.lineage, session.state.serial
        serials = []
        for op in scenario.ops:
            run(session, op)
            serials.append(session.state.serial)
        recorded = session.state.to_json()
        fence = session.lock.fence

    records = len(scenario.ops) if scenario.records < 0 else scenario.records
    assert session.state.serial == start + records
    if scenario.records < 0:
        assert serials == list(range(start + 1, start + records + 1)), "serial grows by one per record"
    again = backend.read()
    assert again.to_json() == recorded
    assert (again.lineage, again.fence) == (lineage, fence)
    for address, want in scenario.expect.items():
        got = again.resources[address]
        pending = (got.pending.action, got.pending.message) if got.pending else None
        assert pending == want["pending"]
        if got.pending:
            assert got.pending.fence == fence
        assert (got.id, got.attributes, got.applied) == (want["id"], want["attributes"], want["applied"])
    for address in scenario.absent:
        assert address not in again.resources
    assert LocalBackend(state_path).journal_path.read_bytes() == b"", "the session compacted at exit"


def test_lineage_and_snapshot_format_are_stable_across_sessions(state_path: Path) -> None:
    backend = LocalBackend(state_path)
    assert backend.read().serial == 0
    with backend.lock("apply", timeout=0) as session:
        session.succeeded(bucket("b"))
        session.succeeded(bucket("a"))
        lineage = session.state.lineage
    with backend.lock("apply", timeout=0) as session:
        assert session.state.lineage == lineage
        session.removed("Bucket/a")
    text = state_path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "version": 1,')
    assert backend.read().lineage == lineage
    assert backend.read().serial == 3


def test_succeeded_stores_a_copy_and_keeps_an_explicit_update_time(state_path: Path) -> None:
    mine = ResourceState("Bucket", "a", "id-a", {"tags": ["x"]}, updated="2026-01-01T00:00:00Z")
    with LocalBackend(state_path).lock("import", timeout=0) as session:
        session.succeeded(mine)
        mine.attributes["tags"].append("changed later")
        assert session.state.resources["Bucket/a"].attributes == {"tags": ["x"]}
    assert LocalBackend(state_path).read().resources["Bucket/a"].updated == "2026-01-01T00:00:00Z"


def test_a_closed_session_refuses_to_record(state_path: Path) -> None:
    with LocalBackend(state_path).lock("apply", timeout=0) as session:
        pass
    with pytest.raises(StateError, match="closed"):
        session.succeeded(bucket("late"))


# -- crash recovery: the journal is the state until the next compaction


def test_records_survive_a_crash_before_compaction(state_path: Path) -> None:
    backend = LocalBackend(state_path)
    session_cm = backend.lock("apply", timeout=0)
    session = session_cm.__enter__()
    try:
        session.intent("Bucket", "a", "create", None)
        session.succeeded(bucket("a"))
        session.intent("Bucket", "b", "create", None)
        # "kill -9" here: nothing closed or compacted. Another process reads:
        seen = LocalBackend(state_path).read()
        assert seen.to_json() == session.state.to_json()
        assert seen.resources["Bucket/b"].pending is not None
        assert seen.serial == 3
    finally:
        session_cm.__exit__(None, None, None)


def test_a_session_after_a_torn_write_drops_the_torn_tail(state_path: Path, write_snapshot: WriteSnapshot) -> None:
    write_snapshot(serial=0, fence=1)
    backend = LocalBackend(state_path)
    backend.journal_path.write_bytes(journal(put(1, 1, "a"), b'{"serial": 2, "fence": 1, "op": "pu'))
    with backend.lock("apply", timeout=0) as session:
        assert set(session.state.resources) == {"Bucket/a"}
        session.succeeded(bucket("b"))
        crashed = LocalBackend(state_path).read()  # the new record is readable before compaction
        assert set(crashed.resources) == {"Bucket/a", "Bucket/b"}
    assert set(backend.read().resources) == {"Bucket/a", "Bucket/b"}


@dataclass
class Replay:
    snapshot: tuple[int, int]
    """(serial, fence) of the snapshot."""
    journal: bytes
    resources: set[str]
    serial: int
    fence: int


REPLAYS = {
    "records after the snapshot are applied in order": Replay(
        (0, 1), journal(put(1, 1, "a"), put(2, 1, "b")), {"a", "b"}, 2, 1
    ),
    "records at or below the snapshot serial were compacted already": Replay(
        (2, 1), journal(put(1, 1, "a"), put(2, 1, "b"), put(3, 1, "c")), {"c"}, 3, 1
    ),
    "a newer fence takes over from an older one": Replay(
        (0, 1), journal(put(1, 1, "a"), put(2, 2, "b")), {"a", "b"}, 2, 2
    ),
    "a zombie writer's lower fence after a higher one is ignored": Replay(
        (0, 1), journal(put(1, 2, "new"), put(2, 1, "zombie"), put(3, 2, "newer")), {"new", "newer"}, 3, 2
    ),
    "a fence lower than the snapshot's is ignored": Replay((0, 5), journal(put(1, 4, "zombie")), set(), 0, 5),
    "a torn last line without newline is ignored": Replay(
        (0, 1), journal(put(1, 1, "a"), b'{"serial": 2, "fence": 1, "op": "put", "reso'), {"a"}, 1, 1
    ),
    "a garbled complete last line (zero-filled block) is ignored": Replay(
        (0, 1), journal(put(1, 1, "a"), b"\0\0\0\0\n"), {"a"}, 1, 1
    ),
    "a garbled line followed by a torn fragment is ignored only as the fragment": Replay(
        (0, 1), journal(put(1, 1, "a"), b"\0\0\0\0"), {"a"}, 1, 1
    ),
    "blank lines are skipped": Replay((0, 1), journal(b"\n", put(1, 1, "a"), b"\n"), {"a"}, 1, 1),
    "an empty journal leaves the snapshot as it is": Replay((7, 3), b"", set(), 7, 3),
}


@pytest.mark.parametrize("case", REPLAYS.values(), ids=REPLAYS.keys())
def test_replay(state_path: Path, write_snapshot: WriteSnapshot, case: Replay) -> None:
    write_snapshot(serial=case.snapshot[0], fence=case.snapshot[1])
    backend = LocalBackend(state_path)
    backend.journal_path.write_bytes(case.journal)
    state = backend.read()
    assert {r.name for r in state.resources.values()} == case.resources
    assert (state.serial, state.fence) == (case.serial, case.fence)


CORRUPT = {
    "a garbled line in the middle names the file and line": (
        journal(put(1, 1, "a"), b"{not json\n", put(2, 1, "b")),
        r"state\.json\.journal line 2 is not a valid journal record",
    ),
    "an unknown operation in the middle": (
        journal({"serial": 1, "fence": 1, "op": "explode"}, put(2, 1, "b")),
        r"line 1 .*unknown journal operation 'explode'",
    ),
    "a record without its data": (
        journal({"serial": 1, "fence": 1, "op": "remove"}, put(2, 1, "b")),
        r"line 1 is not a valid journal record \(KeyError\('address'\)\)",
    ),
}


@pytest.mark.parametrize(("content", "message"), CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_journal_is_an_error(
    state_path: Path, write_snapshot: WriteSnapshot, content: bytes, message: str
) -> None:
    write_snapshot(serial=0, fence=1)
    backend = LocalBackend(state_path)
    backend.journal_path.write_bytes(content)
    with pytest.raises(StateError, match=message) as raised:
        backend.read()
    assert "backup" in raised.value.next_step


def test_a_journal_without_its_snapshot_is_an_error(state_path: Path) -> None:
    backend = LocalBackend(state_path)
    state_path.parent.mkdir()
    backend.journal_path.write_bytes(journal(put(1, 1, "a")))
    with pytest.raises(StateError, match="exists but its snapshot"):
        backend.read()


def test_a_snapshot_that_is_not_json_is_an_error(state_path: Path) -> None:
    state_path.parent.mkdir()
    state_path.write_text("{")
    with pytest.raises(StateError, match=r"state\.json is not valid JSON"):
        LocalBackend(state_path).read()


# -- compaction


def test_the_journal_is_compacted_automatically_when_it_reaches_the_threshold(state_path: Path) -> None:
    backend = LocalBackend(state_path, compact_every=3)

    def lines() -> int:
        return backend.journal_path.read_bytes().count(b"\n")

    with backend.lock("apply", timeout=0) as session:
        session.succeeded(bucket("a"))
        session.succeeded(bucket("a"))
        assert lines() == 2
        assert json.loads(state_path.read_text())["serial"] == 0
        session.succeeded(bucket("a"))  # 3 records >= max(compact_every=3, 2 x 1 resource)
        assert lines() == 0
        assert json.loads(state_path.read_text())["serial"] == 3
        session.succeeded(bucket("a"))
        assert lines() == 1
        assert backend.read().serial == 4


def test_compaction_is_geometric_in_the_number_of_resources(state_path: Path) -> None:
    backend = LocalBackend(state_path, compact_every=3)
    with backend.lock("apply", timeout=0) as session:
        for name in "abcde":
            session.succeeded(bucket(name))
        assert session.records_since_compaction == 5  # 5 records < 2 x 5 resources
        for _ in range(5):
            session.succeeded(bucket("a"))
        assert session.records_since_compaction == 0  # 10 records reached 2 x 5


def test_read_never_writes(state_path: Path, write_snapshot: WriteSnapshot) -> None:
    write_snapshot(serial=1, fence=1)
    backend = LocalBackend(state_path)
    backend.journal_path.write_bytes(journal(put(2, 1, "a"), b'{"torn'))
    before = files(state_path.parent)
    assert set(backend.read().resources) == {"Bucket/a"}
    assert LocalBackend(state_path.parent / "absent.json").read().serial == 0
    assert files(state_path.parent) == before
    assert not (state_path.parent / "absent.json").exists()


def test_read_works_while_another_session_holds_the_lock(state_path: Path) -> None:
    backend = LocalBackend(state_path)
    with backend.lock("apply", timeout=0) as session:
        session.succeeded(bucket("a"))
        assert set(LocalBackend(state_path).read().resources) == {"Bucket/a"}


def test_ten_thousand_resources_are_recorded_and_compacted(state_path: Path) -> None:
    """Linear by design: each record is one append; compaction is geometric (the journal
    may grow to twice the state's resources), so a growing state is not rewritten every
    DEFAULT_COMPACT_EVERY records."""
    backend = LocalBackend(state_path)
    with backend.lock("apply", timeout=0) as session:
        for number in range(10_000):
            session.succeeded(ResourceState("Bucket", f"b{number:05}", f"id-{number}", {"n": number}))
        assert session.records_since_compaction == 10_000  # under twice the resources: no rewrite yet
    state = backend.read()
    assert len(state.resources) == 10_000
    assert state.serial == 10_000
    assert backend.journal_path.read_bytes() == b""
    assert list(json.loads(state_path.read_text())["resources"])[:2] == ["Bucket/b00000", "Bucket/b00001"]


def test_an_error_inside_the_session_still_compacts_and_releases(state_path: Path) -> None:
    backend = LocalBackend(state_path)
    with pytest.raises(RuntimeError, match="provider exploded"), backend.lock("apply", timeout=0) as session:
        session.intent("Bucket", "a", "create", None)
        raise RuntimeError("provider exploded")
    assert backend.current_lock() is None
    assert backend.journal_path.read_bytes() == b""
    pending = backend.read().resources["Bucket/a"].pending
    assert pending is not None and pending.action == "create"


def test_a_corrupt_state_is_reported_and_the_lock_released(state_path: Path) -> None:
    state_path.parent.mkdir()
    state_path.write_text('{"version": 99}')
    backend = LocalBackend(state_path)
    with pytest.raises(StateError, match="state version 99"), backend.lock("apply", timeout=0):
        pass
    assert backend.current_lock() is None
