"""Crash at every step: kill -9 the applying process after k provider calls, for every k,
at both crash points (before the call lands, and after it lands but before recon learns
the id), then plan and apply again in a fresh process state. The estate must converge with
every object created exactly once, state must hold every id, and the next plan is empty."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rig import FIXTURE, Rig

from reconciler.providers.base import Action
from reconciler.state.local import LocalBackend
from reconciler.testing import FakeStore

CHILD = Path(__file__).with_name("crash_child.py")
RESOURCES = 9  # the compliant fixture


def _kill_at(rig: Rig, store_path: Path, state_path: Path, k: int, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), str(rig.dir), str(store_path), str(state_path), str(k), point],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("point", ["before", "after"])
@pytest.mark.parametrize("k", range(RESOURCES + 1))
def test_kill_after_k_calls_then_converge(tmp_path: Path, k: int, point: str) -> None:
    rig = Rig(tmp_path)
    assert FIXTURE.is_file()
    store_path = tmp_path / "platform.json"
    state_path = tmp_path / "state" / "state.json"
    child = _kill_at(rig, store_path, state_path, k, point)
    if k < RESOURCES:
        assert child.returncode == -signal.SIGKILL, child.stderr
    else:
        assert child.returncode == 0, child.stderr  # fewer calls than k: the apply completes
    landed = k + (1 if point == "after" and k < RESOURCES else 0)
    rig.store = FakeStore.open(store_path)
    assert rig.store.count() == landed
    rig.backend = LocalBackend(state_path)  # the killed holder's lock is broken: its pid is dead

    recovery = rig.plan()
    for change in recovery.changes:
        if rig.store.get(change.kind, change.name) is not None:
            assert change.action is not Action.CREATE, f"{change.address} exists yet would be created again"
    assert rig.apply(recovery).ok
    assert rig.store.call_count("create") == RESOURCES - landed, "recovery created something that already existed"

    assert rig.store.count() == RESOURCES
    created_ids = sorted(obj.id for kind in {c.kind for c in recovery.changes} for obj in rig.store.list_objects(kind))
    assert len(set(created_ids)) == RESOURCES
    assert max(int(i.rsplit("-", 1)[1]) for i in created_ids) == RESOURCES, "an object was created twice"
    state = rig.backend.read()
    assert {a: r.id for a, r in state.resources.items()} == {
        f"{o.kind}/{o.name}": o.id for kind in {c.kind for c in recovery.changes} for o in rig.store.list_objects(kind)
    }
    assert all(r.pending is None for r in state.resources.values())
    assert not rig.plan().has_changes
