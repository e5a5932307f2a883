"""The sandbox audit log over HTTP: async query jobs, cursor paging, realtime paging, entry shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_http import POLICIES, QUEUES, login

from reconciler.sandbox import GenesysSandbox

QUERY = "/api/v2/audits/query"
WIDE = "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"
ENTRY_FIELDS = {
    "id",
    "user",
    "client",
    "remoteIp",
    "serviceName",
    "level",
    "eventDate",
    "action",
    "entity",
    "entityType",
    "status",
    "propertyChanges",
}


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=2) as sb:
        yield sb


@pytest.fixture
def api(sandbox: GenesysSandbox) -> Iterator[httpx.Client]:
    with login(sandbox.base_url) as client:
        yield client


def submit(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post(QUERY, json={"interval": WIDE, **body})
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def all_results(api: httpx.Client, transaction_id: str, page_size: int) -> tuple[list[dict[str, Any]], int]:
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"pageSize": page_size}
    pages = 0
    while True:
        body = api.get(f"{QUERY}/{transaction_id}/results", params=params).json()
        pages += 1
        assert body["id"] == transaction_id and body["pageSize"] == page_size
        entries += body["entities"]
        if "cursor" not in body:
            return entries, pages
        params["cursor"] = body["cursor"]


@pytest.fixture
def history(sandbox: GenesysSandbox, api: httpx.Client) -> dict[str, str]:
    """Five policy changes through the API and one in the console, plus a queue edit."""
    pid = api.post(POLICIES, json={"name": "mifid", "order": 1}).json()["id"]
    for order in (2, 3, 4):
        api.patch(f"{POLICIES}/{pid}", json={"order": order})
    sandbox.mutate("policies", pid, {"enabled": False}, changed_by="jane.doe@acme.example")
    queue = api.get(QUEUES).json()["entities"][0]
    api.put(f"{QUEUES}/{queue['id']}", json={**queue, "enableTranscription": True})
    return {"policy": pid, "queue": queue["id"]}


def test_query_status_and_entry_shape(api: httpx.Client, history: dict[str, str]) -> None:
    status = submit(api, serviceName="Quality", filters=[{"property": "EntityId", "value": history["policy"]}])
    assert set(status) == {"id", "state", "startDate", "interval", "serviceName", "filters", "sort"}
    assert (status["state"], status["interval"], status["serviceName"]) == ("Succeeded", WIDE, "Quality")
    assert api.get(f"{QUERY}/{status['id']}").json() == status
    entries, _ = all_results(api, status["id"], 25)
    assert [e["action"] for e in entries] == ["Create", "Update", "Update", "Update", "Update"]
    create = entries[0]
    assert set(create) == ENTRY_FIELDS
    assert create["user"]["id"] == create["user"]["name"] == create["client"]["id"] == "recon-sandbox"
    assert (create["level"], create["status"], create["remoteIp"]) == ("USER", "SUCCESS", ["127.0.0.1"])
    assert (create["entity"]["id"], create["entity"]["name"], create["entityType"]) == (
        history["policy"],
        "mifid",
        "Policy",
    )
    order = next(c for c in create["propertyChanges"] if c["property"] == "order")
    assert (order["oldValues"], order["newValues"]) == ([], ["1"])
    console = entries[-1]
    assert (console["user"]["id"], console["client"]["id"]) == ("jane.doe@acme.example", "admin-console")


def test_results_walk_cursor_pages(api: httpx.Client, history: dict[str, str]) -> None:
    status = submit(api, serviceName="Quality")
    entries, pages = all_results(api, status["id"], 2)
    assert (len(entries), pages) == (5, 3)
    dates = [e["eventDate"] for e in entries]
    assert dates == sorted(dates)


@pytest.mark.parametrize(
    ("sort", "expect_first"),
    [([], "Create"), ([{"name": "Timestamp", "sortOrder": "ascending"}], "Create"), ([{"name": "Timestamp", "sortOrder": "descending"}], "Update")],
    ids=["default-ascending", "ascending", "descending"],
)  # fmt: skip
def test_sort_order(api: httpx.Client, history: dict[str, str], sort: list[dict[str, str]], expect_first: str) -> None:
    status = submit(api, serviceName="Quality", sort=sort)
    entries, _ = all_results(api, status["id"], 100)
    assert entries[0]["action"] == expect_first
    if sort and sort[0]["sortOrder"] == "descending":
        assert entries[0]["user"]["id"] == "jane.doe@acme.example"  # the newest first


@pytest.mark.parametrize(
    ("service", "prop", "value", "count"),
    [
        ("Quality", "UserId", "recon-sandbox", 4),
        ("Quality", "UserId", "jane.doe@acme.example", 1),
        ("Quality", "ClientId", "admin-console", 1),
        ("Quality", "Action", "Create", 1),
        ("Quality", "EntityType", "Policy", 5),
        ("Routing", "EntityType", "Queue", 1),
        ("Routing", "Action", "Delete", 0),
        ("Quality", "TrusteeOrganizationId", "x", 0),
    ],
    ids=["user-api", "user-console", "client-console", "action", "type-policy", "type-queue", "no-delete", "trustee"],
)
def test_filters(api: httpx.Client, history: dict[str, str], service: str, prop: str, value: str, count: int) -> None:
    status = submit(api, serviceName=service, filters=[{"property": prop, "value": value}])
    entries, _ = all_results(api, status["id"], 100)
    assert len(entries) == count


def test_results_are_a_snapshot_taken_at_submission(api: httpx.Client, history: dict[str, str]) -> None:
    status = submit(api, serviceName="Quality")
    api.delete(f"{POLICIES}/{history['policy']}")
    assert len(all_results(api, status["id"], 100)[0]) == 5
    assert len(all_results(api, submit(api, serviceName="Quality")["id"], 100)[0]) == 6


def test_realtime_pages_by_number(api: httpx.Client, history: dict[str, str]) -> None:
    body = {"interval": WIDE, "serviceName": "Quality", "pageSize": 2, "pageNumber": 3}
    page = api.post(f"{QUERY}/realtime", json=body).json()
    assert set(page) == {"entities", "pageSize", "pageNumber", "total", "pageCount"}
    assert (page["pageSize"], page["pageNumber"], page["total"], page["pageCount"]) == (2, 3, 5, 3)
    assert [e["user"]["id"] for e in page["entities"]] == ["jane.doe@acme.example"]


def test_settings_and_deletion_protection_are_audited(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    settings = api.get("/api/v2/recording/settings").json()
    api.put("/api/v2/recording/settings", json={**settings, "maxSimultaneousStreams": 9})
    protection = "/api/v2/recordings/deletionprotection"
    api.put(protection, params={"protect": "true"}, json={"conversationIds": ["conv-1"]})
    sandbox.mutate("settings", "", {"recordingPlaybackUrlTtl": 30}, changed_by="ops@acme.example")
    settings_rows, _ = all_results(api, submit(api, serviceName="Quality")["id"], 100)
    assert [(e["entityType"], e["entity"]["id"], e["user"]["id"]) for e in settings_rows] == [
        ("RecordingSettings", "recordingsettings", "recon-sandbox"),
        ("RecordingSettings", "recordingsettings", "ops@acme.example"),
    ]
    protection_rows, _ = all_results(api, submit(api, serviceName="Recording")["id"], 100)
    assert [(e["entityType"], e["entity"]["id"], e["action"]) for e in protection_rows] == [
        ("DeletionProtection", "conv-1", "Update")
    ]
    change = protection_rows[0]["propertyChanges"]
    assert change == [{"property": "deletionProtected", "oldValues": ["false"], "newValues": ["true"]}]
    entries = settings_rows
    streams = next(c for c in entries[0]["propertyChanges"] if c["property"] == "maxSimultaneousStreams")
    assert (streams["oldValues"], streams["newValues"]) == (["5"], ["9"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"{QUERY}/no-such-transaction", None, 404),
        ("GET", f"{QUERY}/no-such-transaction/results", None, 404),
        ("POST", QUERY, {"interval": WIDE, "serviceName": "Quality", "sort": [{"name": "Nope"}]}, 400),
        ("POST", QUERY, {"interval": WIDE, "serviceName": "Quality", "sort": [{"name": "Timestamp", "sortOrder": "up"}]}, 400),
        ("POST", QUERY, {"interval": WIDE, "serviceName": "Quality", "filters": [{"property": "UserId"}]}, 400),
        ("POST", QUERY, {"interval": "2030-01-01T00:00:00Z/2020-01-01T00:00:00Z", "serviceName": "Quality"}, 400),
        ("POST", f"{QUERY}/realtime", {"interval": WIDE, "serviceName": "Quality", "pageSize": 501}, 400),
    ],
    ids=["unknown-status", "unknown-results", "bad-sort-name", "bad-sort-order", "filter-without-value", "backwards-interval", "realtime-page-too-big"],
)  # fmt: skip
def test_query_errors(api: httpx.Client, method: str, path: str, body: Any, status: int) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == status
    assert response.json()["status"] == status


def test_bad_cursor_is_400(api: httpx.Client) -> None:
    status = submit(api, serviceName="Quality")
    response = api.get(f"{QUERY}/{status['id']}/results", params={"cursor": "!!garbage"})
    assert response.status_code == 400
