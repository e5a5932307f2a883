"""The sandbox's live-conversation API (reconciler.sandbox.conversations): a call's
participants with their attributes, patching participant attributes (text only), recording
metadata; one set of participant ids across the call view, analytics and notifications;
attributes survive a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_http import login

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.notifications import conversation_events


@pytest.fixture
def org(tmp_path: Path) -> Iterator[tuple[GenesysSandbox, httpx.Client]]:
    sandbox = GenesysSandbox(tmp_path / "org.json")
    sandbox.start()
    client = login(sandbox.base_url)
    try:
        yield sandbox, client
    finally:
        client.close()
        sandbox.stop()


def new_call(client: httpx.Client) -> str:
    made = client.post(
        "/api/v2/sandbox/conversations", json={"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"]}
    )
    made.raise_for_status()
    conversation: str = made.json()["conversations"][0]
    return conversation


def test_a_call_lists_customer_acd_and_agent_with_the_ids_analytics_and_notifications_give(
    org: tuple[GenesysSandbox, httpx.Client],
) -> None:
    sandbox, client = org
    conversation = new_call(client)
    call = client.get(f"/api/v2/conversations/calls/{conversation}").json()
    assert [p["purpose"] for p in call["participants"]] == ["customer", "acd", "agent"]
    assert all(p["attributes"] == {} for p in call["participants"])
    ids = [p["id"] for p in call["participants"]]
    stored = next(c for c in sandbox.store.conversations() if c["id"] == conversation)
    ((_, event),) = conversation_events([stored])
    assert [p["id"] for p in event["participants"]] == ids, "one id per participant whichever API is read"
    start = stored["startTime"][:10]
    details = client.post(
        "/api/v2/analytics/conversations/details/query",
        json={
            "interval": f"{start}T00:00:00Z/{start}T23:59:59Z",
            "conversationFilters": [
                {"type": "and", "predicates": [{"dimension": "conversationId", "value": conversation}]}
            ],
        },
    ).json()
    assert [p["participantId"] for p in details["conversations"][0]["participants"]] == ids


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        pytest.param({"attributes": {"market_snapshot": json.dumps({"commodity": 2.45})}}, 202, None, id="text-value-accepted"),
        pytest.param({"attributes": {"market_snapshot": {"commodity": 2.45}}}, 400, "must be a string", id="object-value-refused"),
        pytest.param({"attributes": "x"}, 400, "attributes must be a JSON object", id="attributes-not-an-object"),
    ],
)  # fmt: skip
def test_patching_participant_attributes(
    org: tuple[GenesysSandbox, httpx.Client], body: dict[str, Any], status: int, says: str | None
) -> None:
    _, client = org
    conversation = new_call(client)
    agent = client.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"][2]["id"]
    answer = client.patch(f"/api/v2/conversations/calls/{conversation}/participants/{agent}/attributes", json=body)
    assert answer.status_code == status, answer.text
    if says:
        assert says in answer.json()["message"]
    else:
        participants = client.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"]
        assert participants[2]["attributes"] == body["attributes"]


def test_unknown_call_or_participant_is_404(org: tuple[GenesysSandbox, httpx.Client]) -> None:
    _, client = org
    conversation = new_call(client)
    assert client.get("/api/v2/conversations/calls/nope").status_code == 404
    patch = client.patch(
        f"/api/v2/conversations/calls/{conversation}/participants/nope/attributes", json={"attributes": {"a": "b"}}
    )
    assert patch.status_code == 404


def test_recording_metadata_and_attributes_survive_a_restart(tmp_path: Path) -> None:
    sandbox = GenesysSandbox(tmp_path / "org.json")
    sandbox.start()
    client = login(sandbox.base_url)
    conversation = new_call(client)
    (recording,) = client.get(f"/api/v2/conversations/{conversation}/recordingmetadata").json()
    assert recording["conversationId"] == conversation and recording["fileState"] == "AVAILABLE"
    agent = client.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"][2]["id"]
    client.patch(
        f"/api/v2/conversations/calls/{conversation}/participants/{agent}/attributes",
        json={"attributes": {"status": "data_fetch_failed"}},
    ).raise_for_status()
    client.close()
    sandbox.stop()
    again = GenesysSandbox(tmp_path / "org.json")
    again.start()
    try:
        client = login(again.base_url)
        call = client.get(f"/api/v2/conversations/calls/{conversation}").json()
        assert call["participants"][2]["attributes"] == {"status": "data_fetch_failed"}
        client.close()
    finally:
        again.stop()
