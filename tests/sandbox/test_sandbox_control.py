"""Sandbox-only control endpoints (mutate, reset, health) and the bulk estate for benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_http import POLICIES, QUEUES, get, login

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.seed import DESKS

MUTATE = "/api/v2/sandbox/mutate"
WIDE = "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"
DESK = next(iter(DESKS))  # a seeded queue's name


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=8) as sb:
        yield sb


@pytest.fixture
def api(sandbox: GenesysSandbox) -> Iterator[httpx.Client]:
    with login(sandbox.base_url) as client:
        yield client


def realtime_audit(api: httpx.Client, service: str) -> list[dict[str, Any]]:
    body = {"interval": WIDE, "serviceName": service, "pageSize": 500}
    entries: list[dict[str, Any]] = api.post("/api/v2/audits/query/realtime", json=body).json()["entities"]
    return entries


# -- mutate -----------------------------------------------------------------------------------------------


def test_mutate_queue_by_name_is_audited_as_the_person(api: httpx.Client) -> None:
    payload = {
        "collection": "queues",
        "name": DESK.upper(),  # names match case-insensitively
        "changes": {"suppressInQueueCallRecording": True},
        "changedBy": "jane.doe@acme.example",
    }
    response = api.post(MUTATE, json=payload)
    assert response.status_code == 200, response.text
    queue = response.json()
    assert (queue["name"], queue["suppressInQueueCallRecording"]) == (DESK, True)
    assert api.get(f"{QUEUES}/{queue['id']}").json() == queue
    [entry] = realtime_audit(api, "Routing")
    assert (entry["user"]["id"], entry["client"]["id"], entry["entity"]["id"]) == (
        "jane.doe@acme.example",
        "admin-console",
        queue["id"],
    )
    assert [c["property"] for c in entry["propertyChanges"]] == [
        "dateModified",
        "modifiedBy",
        "suppressInQueueCallRecording",
    ]


def test_mutate_policy_by_id_and_settings(api: httpx.Client) -> None:
    pid = api.post(POLICIES, json={"name": "finra", "enabled": True}).json()["id"]
    changed = api.post(
        MUTATE,
        json={"collection": "policies", "id": pid, "changes": {"enabled": False}, "changedBy": "bob@acme.example"},
    ).json()
    assert (changed["id"], changed["enabled"]) == (pid, False)
    settings = api.post(
        MUTATE,
        json={"collection": "settings", "changes": {"maxSimultaneousStreams": 1}, "changedBy": "bob@acme.example"},
    ).json()
    assert settings["maxSimultaneousStreams"] == 1 and "recordingPlaybackUrlTtl" in settings  # merged
    rows = [(e["entityType"], e["user"]["id"]) for e in realtime_audit(api, "Quality")]
    assert rows == [
        ("Policy", "recon-sandbox"),
        ("Policy", "bob@acme.example"),
        ("RecordingSettings", "bob@acme.example"),
    ]


@pytest.mark.parametrize(
    ("payload", "status", "named"),
    [
        ({"collection": "queues", "name": "No Such Desk", "changes": {"x": 1}, "changedBy": "j"}, 404, "No Such Desk"),
        ({"collection": "policies", "id": "no-such-id", "changes": {"x": 1}, "changedBy": "j"}, 404, "no-such-id"),
        ({"collection": "widgets", "name": DESK, "changes": {"x": 1}, "changedBy": "j"}, 400, "collection"),
        ({"collection": "queues", "name": DESK, "changes": [], "changedBy": "j"}, 400, "changes"),
        ({"collection": "queues", "name": DESK, "changes": {"x": 1}}, 400, "changedBy"),
        ({"collection": "queues", "changes": {"x": 1}, "changedBy": "j"}, 400, "id or name"),
        ({"collection": "queues", "name": DESK, "changes": {"id": "new"}, "changedBy": "j"}, 400, "changes.id"),
    ],
    ids=["unknown-name", "unknown-id", "bad-collection", "changes-not-object", "no-changed-by", "no-target", "platform-field"],
)  # fmt: skip
def test_mutate_errors(api: httpx.Client, payload: dict[str, Any], status: int, named: str) -> None:
    response = api.post(MUTATE, json=payload)
    assert response.status_code == status
    assert named in response.json()["message"]


# -- reset and health ---------------------------------------------------------------------------------------


def test_reset_reseeds_and_keeps_tokens(tmp_path: Path) -> None:
    state = tmp_path / "genesys.json"
    with GenesysSandbox(state, seed=8) as sb, login(sb.base_url) as api:
        before = api.get(QUEUES).json()
        api.post(POLICIES, json={"name": "temp"})
        api.delete(f"{QUEUES}/{before['entities'][0]['id']}")
        status = api.post("/api/v2/audits/query", json={"interval": WIDE, "serviceName": "Quality"}).json()
        reset = api.post("/api/v2/sandbox/reset")
        assert (reset.status_code, reset.json()) == (200, {"status": "reset", "seed": 8})
        assert api.get(QUEUES).json()["entities"] == before["entities"]
        assert api.get(POLICIES).json()["total"] == 0
        assert realtime_audit(api, "Quality") == realtime_audit(api, "Routing") == []
        assert api.get(f"/api/v2/audits/query/{status['id']}").status_code == 404
    with GenesysSandbox(state, seed=99) as again, login(again.base_url) as api:
        assert api.get(QUEUES).json()["entities"] == before["entities"]  # the reset was saved


def test_health_needs_no_token_and_counts_api_requests(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    api.get(QUEUES)
    api.get(f"{QUEUES}/whatever")
    api.get(POLICIES)
    api.get("/api/v2/sandbox/faults")
    health = get(f"{sandbox.base_url}/api/v2/sandbox/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "requests": {"/oauth/token": 1, QUEUES: 2, POLICIES: 1}}


def test_control_endpoints_ignore_faults(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(rate_5xx=1.0, malformed={"/api/v2/sandbox/health": "json"})
    assert api.get(QUEUES).status_code == 503
    assert get(f"{sandbox.base_url}/api/v2/sandbox/health").json()["status"] == "ok"
    mutate = {"collection": "queues", "name": DESK, "changes": {"enableTranscription": True}, "changedBy": "j"}
    assert api.post(MUTATE, json=mutate).status_code == 200


# -- bulk estate ----------------------------------------------------------------------------------------------


def test_add_bulk_inserts_named_queues_and_policies(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    sandbox.add_bulk(queues=600, policies=150)
    queues = api.get(QUEUES, params={"name": "bench-queue-*", "pageSize": 500}).json()
    assert queues["total"] == 600
    assert queues["entities"][0]["name"] == "bench-queue-00001"
    bench_ids = {q["id"] for q in queues["entities"]} | {
        q["id"]
        for q in api.get(QUEUES, params={"name": "bench-queue-*", "pageSize": 500, "pageNumber": 2}).json()["entities"]
    }
    policies = api.get(POLICIES, params={"pageSize": 100, "pageNumber": 2}).json()
    assert (policies["total"], len(policies["entities"])) == (150, 50)
    policy = api.get(POLICIES, params={"name": "bench-policy-0150"}).json()["entities"][0]
    for_queues = policy["conditions"]["forQueues"]
    assert 1 <= len(for_queues) <= 3 and {q["id"] for q in for_queues} <= bench_ids
    days = policy["actions"]["retentionDuration"]["deleteRetention"]["days"]
    assert days in {1827, 2557}
    assert policy["mediaPolicies"]["callPolicy"]["conditions"] == policy["conditions"]
    assert realtime_audit(api, "Routing") == []  # direct inserts are not audited
    sandbox.add_bulk(queues=1, policies=1)
    assert api.get(QUEUES, params={"name": "bench-queue-00601"}).json()["total"] == 1
    assert api.get(POLICIES, params={"name": "bench-policy-0151"}).json()["total"] == 1


def test_add_bulk_saves_once_to_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "genesys.json"
    with GenesysSandbox(state, seed=8) as sb:
        sb.add_bulk(queues=20, policies=10)
    with GenesysSandbox(state) as again, login(again.base_url) as api:
        assert api.get(POLICIES).json()["total"] == 10
        assert api.get(QUEUES, params={"name": "bench-*"}).json()["total"] == 20


def test_add_bulk_rejects_negative_counts(sandbox: GenesysSandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.add_bulk(queues=-1, policies=0)
