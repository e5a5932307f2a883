"""The Genesys Cloud sandbox over real loopback HTTP: auth, entities, paging, protection, audit, faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_http import POLICIES, QUEUES, basic, get, login, post

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.seed import CONVERSATION_COUNT, DESKS, EXAMPLE_PEOPLE, SEED_EPOCH, USER_COUNT
from reconciler.sandbox.wire import iso

PROTECTION = "/api/v2/recordings/deletionprotection"
WIDE_INTERVAL = "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=1) as sb:
        yield sb


@pytest.fixture
def api(sandbox: GenesysSandbox) -> Iterator[httpx.Client]:
    with login(sandbox.base_url) as client:
        yield client


def policy_body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "order": 1,
        "description": "MiFID II voice",
        "enabled": True,
        "mediaPolicies": {"callPolicy": {"conditions": {"forQueues": []}, "actions": {"retainRecording": True}}},
        **extra,
    }


def audit(api: httpx.Client, service: str, entity_id: str) -> list[dict[str, Any]]:
    body = {
        "interval": WIDE_INTERVAL,
        "serviceName": service,
        "filters": [{"property": "EntityId", "value": entity_id}],
    }
    response = api.post("/api/v2/audits/query", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "Succeeded"
    results = f"/api/v2/audits/query/{response.json()['id']}/results"
    entities: list[dict[str, Any]] = []
    params: dict[str, Any] = {"pageSize": 500}
    while True:
        page = api.get(results, params=params).json()
        entities += page["entities"]
        if "cursor" not in page:
            return entities
        params["cursor"] = page["cursor"]


# -- auth ------------------------------------------------------------------------------------


def test_token_is_issued_for_the_configured_client(sandbox: GenesysSandbox) -> None:
    response = post(
        f"{sandbox.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic("recon-sandbox", "sandbox-secret")},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert body["access_token"]


@pytest.mark.parametrize(
    ("headers", "form", "status", "error"),
    [
        (
            {"Authorization": basic("recon-sandbox", "wrong")},
            {"grant_type": "client_credentials"},
            401,
            "invalid_client",
        ),
        (
            {"Authorization": basic("someone-else", "sandbox-secret")},
            {"grant_type": "client_credentials"},
            401,
            "invalid_client",
        ),
        ({}, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (
            {"Authorization": basic("recon-sandbox", "sandbox-secret")},
            {"grant_type": "password"},
            400,
            "unsupported_grant_type",
        ),
    ],
    ids=["wrong-secret", "wrong-id", "no-basic", "wrong-grant"],
)
def test_token_is_refused(
    sandbox: GenesysSandbox, headers: dict[str, str], form: dict[str, str], status: int, error: str
) -> None:
    response = post(f"{sandbox.base_url}/oauth/token", data=form, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}],
    ids=["missing", "unknown", "basic"],
)
def test_api_requires_an_issued_bearer_token(sandbox: GenesysSandbox, headers: dict[str, str]) -> None:
    response = get(f"{sandbox.base_url}{POLICIES}", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert (body["code"], body["status"]) == ("bad.credentials", 401)
    assert body["message"]


# -- media retention policies ------------------------------------------------------------------


def test_policy_create_list_get_put_patch_delete(api: httpx.Client) -> None:
    created = api.post(POLICIES, json=policy_body("mifid-voice", conditions={"forQueues": []}))
    assert created.status_code == 200
    policy = created.json()
    pid = policy["id"]
    assert policy["selfUri"] == f"{POLICIES}/{pid}"
    assert policy["createdDate"].endswith("Z") and policy["modifiedDate"]
    assert policy["mediaPolicies"]["callPolicy"]["actions"] == {"retainRecording": True}

    listing = api.get(POLICIES, params={"name": "mifid-voice"}).json()
    assert [p["id"] for p in listing["entities"]] == [pid]
    assert api.get(f"{POLICIES}/{pid}").json() == policy

    replaced = api.put(f"{POLICIES}/{pid}", json={"name": "mifid-voice", "order": 2, "id": "spoofed"}).json()
    assert replaced["id"] == pid and replaced["order"] == 2
    assert "description" not in replaced and "mediaPolicies" not in replaced
    assert replaced["createdDate"] == policy["createdDate"]

    patched = api.patch(f"{POLICIES}/{pid}", json={"enabled": False}).json()
    assert (patched["enabled"], patched["order"], patched["name"]) == (False, 2, "mifid-voice")

    assert api.delete(f"{POLICIES}/{pid}").status_code == 204
    missing = api.get(f"{POLICIES}/{pid}")
    assert missing.status_code == 404
    assert (missing.json()["code"], missing.json()["status"]) == ("not.found", 404)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{POLICIES}/nope", None),
        ("PUT", f"{POLICIES}/nope", {"name": "x"}),
        ("PATCH", f"{POLICIES}/nope", {"name": "x"}),
        ("DELETE", f"{POLICIES}/nope", None),
        ("GET", f"{QUEUES}/nope", None),
        ("GET", "/api/v2/nothing/here", None),
    ],
)
def test_unknown_ids_are_404(api: httpx.Client, method: str, path: str, body: Any) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == 404
    assert response.json()["code"] == "not.found"


@pytest.mark.parametrize(
    ("body", "code"),
    [({"order": 1}, "bad.request"), (["not", "an", "object"], "bad.request")],
    ids=["no-name", "not-object"],
)
def test_policy_create_validates(api: httpx.Client, body: Any, code: str) -> None:
    response = api.post(POLICIES, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_paging_walks_nexturi_across_pages(api: httpx.Client) -> None:
    for i in range(230):
        assert api.post(POLICIES, json=policy_body(f"p{i:03d}")).status_code == 200
    seen: list[str] = []
    uri: str | None = f"{POLICIES}?pageSize=100&pageNumber=1"
    pages = []
    while uri:
        body = api.get(uri).json()
        pages.append(body)
        seen += [p["name"] for p in body["entities"]]
        uri = body.get("nextUri")
    assert [len(p["entities"]) for p in pages] == [100, 100, 30]
    assert {(p["total"], p["pageCount"], p["pageSize"]) for p in pages} == {(230, 3, 100)}
    assert [p["pageNumber"] for p in pages] == [1, 2, 3]
    assert "nextUri" not in pages[-1]
    assert pages[0]["lastUri"] == f"{POLICIES}?pageSize=100&pageNumber=3"
    assert seen == [f"p{i:03d}" for i in range(230)]
    default = api.get(POLICIES).json()
    assert (default["pageSize"], default["pageCount"]) == (25, 10)


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        (POLICIES, 100, 200),
        (POLICIES, 101, 400),
        (QUEUES, 500, 200),
        (QUEUES, 501, 400),
        ("/api/v2/users", 500, 200),
        (POLICIES, 0, 400),
    ],
)
def test_page_size_limits(api: httpx.Client, path: str, size: int, status: int) -> None:
    assert api.get(path, params={"pageSize": size}).status_code == status


# -- queues, users, settings ------------------------------------------------------------------


def test_queue_put_keeps_client_fields_and_platform_fields(api: httpx.Client) -> None:
    queues = api.get(QUEUES, params={"pageSize": 500}).json()["entities"]
    assert sorted(q["name"] for q in queues) == sorted(DESKS)
    queue = api.get(f"{QUEUES}/{queues[0]['id']}").json()
    sent = {
        **queue,
        "enableTranscription": True,
        "suppressInQueueCallRecording": True,
        "skillEvaluationMethod": "BEST",
        "memberCount": 999,
    }
    updated = api.put(f"{QUEUES}/{queue['id']}", json=sent).json()
    assert updated["enableTranscription"] is True and updated["suppressInQueueCallRecording"] is True
    assert updated["skillEvaluationMethod"] == "BEST"
    assert updated["division"] == queue["division"]
    assert (updated["memberCount"], updated["dateCreated"], updated["id"]) == (
        queue["memberCount"],
        queue["dateCreated"],
        queue["id"],
    )
    assert updated["modifiedBy"] == "recon-sandbox"
    assert api.get(f"{QUEUES}/{queue['id']}").json() == updated


def test_queue_create_delete_and_name_filter(api: httpx.Client) -> None:
    queue = api.post(QUEUES, json={"name": "Repo Desk"}).json()
    assert queue["division"]["name"] == "Home" and queue["suppressInQueueCallRecording"] is False
    assert [q["id"] for q in api.get(QUEUES, params={"name": "repo*"}).json()["entities"]] == [queue["id"]]
    assert api.delete(f"{QUEUES}/{queue['id']}").status_code == 204
    assert api.get(QUEUES, params={"name": "Repo Desk"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", f"{QUEUES}/{{queue}}"),
        ("POST", "/api/v2/users/{user}"),
        ("DELETE", "/api/v2/recording/settings"),
        ("GET", PROTECTION),
    ],
)
def test_unsupported_methods_are_405(api: httpx.Client, method: str, path: str) -> None:
    queue = api.get(QUEUES).json()["entities"][0]["id"]
    user = api.get("/api/v2/users").json()["entities"][0]["id"]
    response = api.request(method, path.format(queue=queue, user=user), json={"name": "x"})
    assert response.status_code == 405
    assert response.json()["status"] == 405


def test_users_are_seeded_traders(api: httpx.Client) -> None:
    body = api.get("/api/v2/users", params={"pageSize": 500}).json()
    assert body["total"] == USER_COUNT + len(EXAMPLE_PEOPLE)  # random traders + the people the examples name
    emails = {u["email"] for u in body["entities"]}
    assert {"ahmed.khan@acme.example", "lena.berg@acme.example", "james.oconnor@acme.example"} <= emails
    for user in body["entities"]:
        first, last = user["name"].lower().replace("'", "").split()
        assert user["email"] == f"{first}.{last}@acme.example"
        assert api.get(f"/api/v2/users/{user['id']}").json() == user


def test_recording_settings_round_trip(api: httpx.Client) -> None:
    settings = api.get("/api/v2/recording/settings").json()
    assert "maxSimultaneousStreams" in settings
    changed = {**settings, "regionalRecordingStorageEnabled": True}
    assert api.put("/api/v2/recording/settings", json=changed).json() == changed
    assert api.get("/api/v2/recording/settings").json() == changed


def test_conversations_listing_filters(api: httpx.Client) -> None:
    everything = api.get("/api/v2/sandbox/conversations", params={"pageSize": 100}).json()
    assert everything["total"] == CONVERSATION_COUNT
    first = everything["entities"][0]
    assert set(first) >= {"id", "startTime", "queueId", "participants", "transcript"}
    user_id = next(p["userId"] for p in first["participants"] if p["purpose"] == "agent")
    params = {
        "queueId": first["queueId"],
        "userId": user_id,
        "from": first["startTime"],
        "to": iso(SEED_EPOCH + timedelta(days=1)),
        "pageSize": 100,
    }
    hits = api.get("/api/v2/sandbox/conversations", params=params).json()
    assert first["id"] in [c["id"] for c in hits["entities"]]
    for conv in hits["entities"]:
        assert conv["queueId"] == first["queueId"]
        assert user_id in [p.get("userId") for p in conv["participants"]]


# -- deletion protection ----------------------------------------------------------------------


def test_deletion_protection_batches_of_at_most_100(api: httpx.Client) -> None:
    ids = [f"conv-{i}" for i in range(101)]
    too_many = api.put(PROTECTION, params={"protect": "true"}, json={"conversationIds": ids})
    assert too_many.status_code == 400
    assert api.put(PROTECTION, params={"protect": "true"}, json={"conversationIds": ids[:100]}).status_code == 204
    queried = api.post(PROTECTION, json={"conversationIds": ["conv-0", "conv-100"]}).json()
    assert queried == [{"id": "conv-0", "selfUri": "/api/v2/conversations/conv-0"}]
    assert api.put(PROTECTION, params={"protect": "false"}, json={"conversationIds": ["conv-0"]}).status_code == 204
    assert api.post(PROTECTION, json={"conversationIds": ["conv-0", "conv-1"]}).json()[0]["id"] == "conv-1"
    assert api.put(PROTECTION, json={"conversationIds": ["conv-0"]}).status_code == 400  # protect= is required


def test_deletion_protection_org_limit_of_1000(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    for batch in range(10):
        ids = [f"c{batch}-{i}" for i in range(100)]
        assert api.put(PROTECTION, params={"protect": "true"}, json={"conversationIds": ids}).status_code == 204
    assert sandbox.store.protected_count() == 1000
    again = api.put(PROTECTION, params={"protect": "true"}, json={"conversationIds": ["c0-0"]})
    assert again.status_code == 204  # already protected: no growth
    over = api.put(PROTECTION, params={"protect": "true"}, json={"conversationIds": ["one-more"]})
    assert over.status_code == 400
    assert over.json()["code"] == "limit.exceeded"
    assert sandbox.store.protected_count() == 1000


# -- audit and out-of-band edits ----------------------------------------------------------------


def test_audit_query_attributes_mutate_and_api_changes(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    queue = api.get(QUEUES).json()["entities"][0]
    api.put(f"{QUEUES}/{queue['id']}", json={**queue, "enableAudioMonitoring": True})
    sandbox.mutate("queues", queue["id"], {"suppressInQueueCallRecording": True}, changed_by="jane.admin@acme.example")
    assert api.get(f"{QUEUES}/{queue['id']}").json()["suppressInQueueCallRecording"] is True
    entries = audit(api, "Routing", queue["id"])
    assert [(e["user"]["name"], e["action"], e["entityType"]) for e in entries] == [
        ("recon-sandbox", "Update", "Queue"),
        ("jane.admin@acme.example", "Update", "Queue"),
    ]
    assert [(e["user"]["id"], e["client"]["id"]) for e in entries] == [
        ("recon-sandbox", "recon-sandbox"),
        ("jane.admin@acme.example", "admin-console"),
    ]
    change = next(c for c in entries[1]["propertyChanges"] if c["property"] == "suppressInQueueCallRecording")
    assert (change["oldValues"], change["newValues"]) == (["false"], ["true"])
    assert audit(api, "Quality", queue["id"]) == []


def test_audit_covers_policy_lifecycle(api: httpx.Client) -> None:
    pid = api.post(POLICIES, json=policy_body("sec-17a4")).json()["id"]
    api.patch(f"{POLICIES}/{pid}", json={"order": 9})
    api.delete(f"{POLICIES}/{pid}")
    assert [(e["action"], e["entityType"]) for e in audit(api, "Quality", pid)] == [
        ("Create", "Policy"),
        ("Update", "Policy"),
        ("Delete", "Policy"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"serviceName": "Routing"},
        {"interval": WIDE_INTERVAL},
        {"interval": WIDE_INTERVAL, "serviceName": "Routing", "filters": [{"property": "Nope"}]},
    ],
    ids=["no-interval", "no-service", "bad-filter"],
)
def test_audit_query_validates(api: httpx.Client, body: dict[str, Any]) -> None:
    assert api.post("/api/v2/audits/query", json=body).status_code == 400


@pytest.mark.parametrize(
    ("collection", "object_id", "error"),
    [("queues", "nope", KeyError), ("widgets", "x", ValueError)],
    ids=["unknown-id", "unknown-collection"],
)
def test_mutate_rejects_unknown_targets(
    sandbox: GenesysSandbox, collection: str, object_id: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        sandbox.mutate(collection, object_id, {"name": "x"}, changed_by="someone")


# -- persistence and determinism ----------------------------------------------------------------


def test_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "genesys.json"
    with GenesysSandbox(state, seed=3) as first, login(first.base_url) as api:
        pid = api.post(POLICIES, json=policy_body("finra")).json()["id"]
        api.put(PROTECTION, params={"protect": "true"}, json={"conversationIds": ["held-1"]})
        queue_id = api.get(QUEUES).json()["entities"][0]["id"]
        first.mutate("queues", queue_id, {"enableTranscription": True}, changed_by="ops@acme.example")
        users = api.get("/api/v2/users").json()["entities"]
    assert state.exists() and not list(tmp_path.glob("*.tmp"))
    with GenesysSandbox(state, seed=99) as second, login(second.base_url) as api:
        assert api.get(f"{POLICIES}/{pid}").json()["name"] == "finra"
        assert api.post(PROTECTION, json={"conversationIds": ["held-1"]}).json()[0]["id"] == "held-1"
        assert api.get(f"{QUEUES}/{queue_id}").json()["enableTranscription"] is True
        assert api.get("/api/v2/users").json()["entities"] == users  # no re-seed with the new seed
        assert [e["user"]["name"] for e in audit(api, "Routing", queue_id)] == ["ops@acme.example"]


def test_same_seed_gives_same_org() -> None:
    def snapshot(seed: int) -> tuple[list[str], list[str]]:
        with GenesysSandbox(None, seed=seed) as sb, login(sb.base_url) as api:
            users = [
                u["email"] + u["id"] for u in api.get("/api/v2/users", params={"pageSize": 500}).json()["entities"]
            ]
            convs = [
                c["id"] for c in api.get("/api/v2/sandbox/conversations", params={"pageSize": 100}).json()["entities"]
            ]
            return users, convs

    assert snapshot(7) == snapshot(7)
    assert snapshot(7) != snapshot(8)


# -- faults and counters ----------------------------------------------------------------------


def test_rate_429_answers_with_retry_after(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(rate_429=1.0)
    response = api.get(POLICIES)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["message"] == "Rate limit exceeded the maximum. Retry the request in [1] seconds"
    assert (body["code"], body["status"]) == ("too.many.requests.retry.after", 429)
    sandbox.set_faults(rate_429=0.0)
    assert api.get(POLICIES).status_code == 200


def test_rate_5xx_answers_503() -> None:
    with GenesysSandbox(None, rate_5xx=1.0) as sb, login(sb.base_url) as api:
        response = api.get(QUEUES)
        assert response.status_code == 503
        assert response.json()["status"] == 503


def test_faults_are_deterministic_for_a_seed() -> None:
    def statuses() -> list[int]:
        with GenesysSandbox(None, seed=5, rate_429=0.3, rate_5xx=0.2) as sb, login(sb.base_url) as api:
            return [api.get("/api/v2/recording/settings").status_code for _ in range(30)]

    first = statuses()
    assert first == statuses()
    assert {200, 429, 503} <= set(first)


def test_latency_knob_still_serves() -> None:
    with GenesysSandbox(None, latency_ms=5) as sb, login(sb.base_url) as api:
        assert api.get("/api/v2/users").status_code == 200


def test_request_count_by_path_prefix(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    api.get(POLICIES)
    pid = api.post(POLICIES, json=policy_body("x")).json()["id"]
    api.get(f"{POLICIES}/{pid}")
    api.get(QUEUES)
    counts = sandbox.request_count
    assert counts[POLICIES] == 3
    assert counts[QUEUES] == 1
    assert counts["/oauth/token"] == 1


def test_stop_is_idempotent_and_base_url_needs_start() -> None:
    sb = GenesysSandbox(None)
    with pytest.raises(RuntimeError):
        _ = sb.base_url
    url = sb.start()
    assert url.startswith("http://127.0.0.1:") and sb.start() == url
    sb.stop()
    sb.stop()
