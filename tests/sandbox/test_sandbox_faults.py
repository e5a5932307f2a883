"""Fault knobs for error-class tests: missing permissions (403), malformed bodies, bad credentials,
and the sandbox-only HTTP endpoint that sets them from another process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_http import POLICIES, QUEUES, basic, get, login, post, put

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.faults import all_permissions
from reconciler.sandbox.seed import DESKS

FAULTS = "/api/v2/sandbox/faults"
WIDE = "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=6) as sb:
        yield sb


@pytest.fixture
def api(sandbox: GenesysSandbox) -> Iterator[httpx.Client]:
    with login(sandbox.base_url) as client:
        yield client


# -- credentials ----------------------------------------------------------------------------------


def test_wrong_secret_and_unknown_bearer_are_401(sandbox: GenesysSandbox) -> None:
    token = post(
        f"{sandbox.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(sandbox.client_id, "not-the-secret")},
    )
    assert (token.status_code, token.json()["error"]) == (401, "invalid_client")
    api = get(f"{sandbox.base_url}{QUEUES}", headers={"Authorization": "Bearer forged-token"})
    assert (api.status_code, api.json()["code"]) == (401, "bad.credentials")


def test_a_sandbox_with_other_credentials_rejects_the_defaults() -> None:
    with GenesysSandbox(None, client_id="ci-client", client_secret="s3cret") as sb:
        refused = post(
            f"{sb.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic("recon-sandbox", "sandbox-secret")},
        )
        assert refused.status_code == 401


# -- missing permissions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "method", "path", "body"),
    [
        ("recording:retentionPolicy:view", "GET", POLICIES, None),
        ("recording:retentionPolicy:add", "POST", POLICIES, {"name": "x"}),
        ("recording:retentionPolicy:edit", "PUT", f"{POLICIES}/any-id", {"name": "x"}),
        ("recording:retentionPolicy:delete", "DELETE", f"{POLICIES}/any-id", None),
        ("routing:queue:view", "GET", f"{QUEUES}/any-id", None),
        ("routing:queue:edit", "PUT", f"{QUEUES}/any-id", {"name": "x"}),
        ("recording:recordingSettings:view", "GET", "/api/v2/recording/settings", None),
        ("recording:recordingSettings:edit", "PUT", "/api/v2/recording/settings", {}),
        ("recording:deletionProtection:edit", "PUT", "/api/v2/recordings/deletionprotection?protect=true", {"conversationIds": ["c"]}),
        ("audits:audit:view", "POST", "/api/v2/audits/query", {"interval": WIDE, "serviceName": "Quality"}),
        ("analytics:conversationDetail:view", "POST", "/api/v2/analytics/conversations/details/query", {"interval": WIDE}),
        ("speechAndTextAnalytics:transcript:view", "POST", "/api/v2/speechandtextanalytics/transcripts/search", {}),
    ],
    ids=["policy-view", "policy-add", "policy-edit", "policy-delete", "queue-view", "queue-edit", "settings-view",
         "settings-edit", "protection-edit", "audit-view", "analytics-view", "transcript-view"],
)  # fmt: skip
def test_denied_permission_answers_403(
    sandbox: GenesysSandbox, api: httpx.Client, permission: str, method: str, path: str, body: Any
) -> None:
    assert permission in all_permissions()
    sandbox.set_faults(deny_permissions={permission})
    response = api.request(method, path, json=body)
    assert response.status_code == 403
    error = response.json()
    assert error["message"] == f"You are missing the following permission(s): {permission}"
    assert (error["code"], error["status"], error["messageParams"]) == (
        "missing.permissions",
        403,
        {"permissions": [permission]},
    )


def test_denying_view_leaves_other_verbs_alone(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(deny_permissions=["recording:retentionPolicy:view"])
    assert api.post(POLICIES, json={"name": "still-allowed"}).status_code == 200
    assert api.get(QUEUES).status_code == 200
    sandbox.set_faults(deny_permissions=[])
    assert api.get(POLICIES).status_code == 200


# -- malformed bodies ---------------------------------------------------------------------------------


def test_malformed_json_and_missing_field(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(malformed={QUEUES: "json"})
    broken = api.get(QUEUES)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert api.get(POLICIES).json()["entities"] == []  # other paths unaffected
    sandbox.set_faults(malformed={QUEUES: "missing-field"})
    envelope = api.get(QUEUES).json()
    assert "entities" not in envelope and envelope["total"] == len(DESKS)
    sandbox.set_faults(malformed={})
    assert len(api.get(QUEUES).json()["entities"]) == len(DESKS)


def test_missing_field_on_a_single_object_drops_id(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    queue_id = api.get(QUEUES).json()["entities"][0]["id"]
    sandbox.set_faults(malformed={f"{QUEUES}/{queue_id}": "missing-field"})
    body = api.get(f"{QUEUES}/{queue_id}").json()
    assert "id" not in body and body["name"]


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_429": 1.5}, {"latency_ms": -1}, {"malformed": {QUEUES: "xml"}}],
    ids=["rate-above-1", "negative-latency", "unknown-malformed-kind"],
)
def test_set_faults_rejects_bad_values(sandbox: GenesysSandbox, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sandbox.set_faults(**kwargs)


# -- over HTTP ------------------------------------------------------------------------------------------


def test_faults_over_http_round_trip(sandbox: GenesysSandbox, api: httpx.Client) -> None:
    assert api.get(FAULTS).json() == {
        "latencyMs": 0,
        "rate429": 0.0,
        "rate5xx": 0.0,
        "denyPermissions": [],
        "malformed": {},
    }
    body = {"rate429": 1.0, "denyPermissions": ["routing:queue:view"], "malformed": {POLICIES: "json"}}
    answer = api.put(FAULTS, json=body)
    assert answer.status_code == 200
    assert answer.json() == {**body, "latencyMs": 0, "rate5xx": 0.0}
    assert api.get(QUEUES).status_code == 429  # the knobs apply to API calls...
    assert api.get(FAULTS).json()["rate429"] == 1.0  # ...never to the control endpoints
    assert api.put(FAULTS, json={"rate429": 0}).json()["denyPermissions"] == ["routing:queue:view"]  # merge
    assert api.get(QUEUES).status_code == 403
    cleared = api.delete(FAULTS).json()
    assert cleared == {"latencyMs": 0, "rate429": 0.0, "rate5xx": 0.0, "denyPermissions": [], "malformed": {}}
    assert api.get(QUEUES).status_code == 200


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"rate429": "lots"}, "rate429"),
        ({"rate5xx": 2}, "rate5xx"),
        ({"latencyMs": 1.5}, "latencyMs"),
        ({"denyPermissions": "routing:queue:view"}, "denyPermissions"),
        ({"malformed": {QUEUES: "yaml"}}, "malformed"),
        ({"chaos": True}, "chaos"),
    ],
    ids=["rate-not-number", "rate-above-1", "latency-not-int", "deny-not-list", "malformed-kind", "unknown-knob"],
)
def test_faults_over_http_validate(api: httpx.Client, body: dict[str, Any], named: str) -> None:
    response = api.put(FAULTS, json=body)
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_faults_endpoint_needs_a_token(sandbox: GenesysSandbox) -> None:
    assert put(f"{sandbox.base_url}{FAULTS}", json={"rate429": 1}).status_code == 401
