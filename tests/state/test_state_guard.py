"""The secret-free guard of the state: nothing that looks like a credential reaches the
journal or the snapshot, and the message never repeats it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.state import LocalBackend, ResourceState, StateError


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".recon" / "state.json"


def bucket(name: str) -> ResourceState:
    return ResourceState("Bucket", name, f"id-{name}", {})


SECRETS = {
    "an AWS access key id": {"note": "AKIAIOSFODNN7EXAMPLE"},
    "a PEM private key header": {"tls": {"key": "-----BEGIN RSA PRIVATE KEY-----\nMIIE..."}},
    "a secret inside a list": {"members": ["ok", "ghp_0123456789abcdefghijABCDEFGHIJ0123"]},
    "a secret as a map key": {"labels": {"AKIAIOSFODNN7EXAMPLE": "x"}},
}


@pytest.mark.parametrize("attributes", SECRETS.values(), ids=SECRETS.keys())
def test_compaction_refuses_a_state_with_a_secret(state_path: Path, attributes: dict[str, Any]) -> None:
    backend = LocalBackend(state_path)
    with backend.lock("apply", timeout=0) as session:
        session.succeeded(bucket("fine"))
        session.compact()
        snapshot = state_path.read_bytes()
        session.state.resources["Bucket/leaky"] = ResourceState("Bucket", "leaky", "id", attributes)
        with pytest.raises(StateError, match=r"refusing to write state .*Bucket/leaky\.attributes") as raised:
            session.compact()
        assert "AKIA" not in str(raised.value) and "BEGIN" not in str(raised.value)
        assert state_path.read_bytes() == snapshot
        del session.state.resources["Bucket/leaky"]


@pytest.mark.parametrize("attributes", SECRETS.values(), ids=SECRETS.keys())
def test_recording_refuses_a_resource_with_a_secret(state_path: Path, attributes: dict[str, Any]) -> None:
    backend = LocalBackend(state_path)
    with backend.lock("apply", timeout=0) as session:
        session.succeeded(bucket("fine"))
        journal_before, state_before = backend.journal_path.read_bytes(), session.state.to_json()
        with pytest.raises(StateError, match=r"refusing to write the state of Bucket/leaky: resource\.attributes"):
            session.succeeded(ResourceState("Bucket", "leaky", "id", attributes))
        assert backend.journal_path.read_bytes() == journal_before
        assert session.state.to_json() == state_before
    assert set(backend.read().resources) == {"Bucket/fine"}


def test_attributes_that_are_not_json_are_refused(state_path: Path) -> None:
    with LocalBackend(state_path).lock("apply", timeout=0) as session:
        with pytest.raises(StateError, match="cannot record the state of Bucket/odd: it is not plain JSON"):
            session.succeeded(ResourceState("Bucket", "odd", "id", {"when": object()}))
        assert session.state.serial == 0
