"""The official Genesys SDK (PureCloudPlatformClientV2) against the sandbox: it must log in and
deserialise every answer into its own models.

The SDK derives the login host by replacing "//api." with "//login." in the base URL, so a
loopback base URL serves both. Each test builds its own ApiClient; the SDK's module-level
`configuration` singleton is snapshotted and restored so no state leaks between tests.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.seed import CONVERSATION_COUNT, DESKS, HISTORY_DAYS, SEED_EPOCH
from reconciler.sandbox.wire import iso

sdk = pytest.importorskip("PureCloudPlatformClientV2")
from PureCloudPlatformClientV2.rest import ApiException  # noqa: E402


@pytest.fixture
def sandbox() -> Iterator[GenesysSandbox]:
    with GenesysSandbox(None, seed=11) as sb:
        yield sb


@pytest.fixture
def client(sandbox: GenesysSandbox) -> Iterator[Any]:
    config = sdk.configuration
    saved = {k: copy.copy(v) for k, v in vars(config).items() if k in {"host", "api_client", "access_token"}}
    try:
        api_client = sdk.ApiClient(host=sandbox.base_url)
        api_client.get_client_credentials_token(sandbox.client_id, sandbox.client_secret)
        yield api_client
    finally:
        for key, value in saved.items():
            setattr(config, key, value)


def policy_create(name: str, queue_ids: list[str], archive_days: int, delete_days: int) -> Any:
    models = sdk
    conditions = models.PolicyConditions()
    conditions.for_queues = []
    for queue_id in queue_ids:
        queue = models.Queue()
        queue.id = queue_id
        conditions.for_queues.append(queue)
    conditions.directions = ["INBOUND"]
    retention = models.RetentionDuration()
    retention.archive_retention = models.ArchiveRetention()
    retention.archive_retention.days = archive_days
    retention.archive_retention.storage_medium = "CLOUDARCHIVE"
    retention.delete_retention = models.DeleteRetention()
    retention.delete_retention.days = delete_days
    actions = models.PolicyActions()
    actions.retain_recording = True
    actions.retention_duration = retention
    body = models.PolicyCreate()
    body.name = name
    body.description = "MiFID II voice"
    body.enabled = True
    body.order = 1
    body.conditions = conditions
    body.actions = actions
    return body


def test_sdk_login_is_refused_with_a_wrong_secret(sandbox: GenesysSandbox) -> None:
    api_client = sdk.ApiClient(host=sandbox.base_url)
    with pytest.raises(ApiException) as refused:
        api_client.get_client_credentials_token(sandbox.client_id, "wrong-secret")
    assert refused.value.status == 401
    assert "invalid_client" in refused.value.body


def test_sdk_lists_routing_queues(client: Any) -> None:
    listing = sdk.RoutingApi(client).get_routing_queues(page_size=100, page_number=1)
    assert isinstance(listing, sdk.QueueEntityListing)
    assert (listing.total, listing.page_size, listing.page_number, listing.page_count) == (len(DESKS), 100, 1, 1)
    names = [q.name for q in listing.entities]
    assert names == sorted(names, key=str.lower)
    first = listing.entities[0]
    assert isinstance(first, sdk.Queue)
    assert first.id and first.division.name == "Home"
    assert first.date_created.year == 2025  # parsed into a datetime by the SDK
    assert first.suppress_in_queue_call_recording is False


def test_sdk_media_retention_policy_lifecycle(client: Any) -> None:
    recording, routing = sdk.RecordingApi(client), sdk.RoutingApi(client)
    queue_ids = [q.id for q in routing.get_routing_queues(page_size=2).entities]
    assert recording.get_recording_mediaretentionpolicies().total == 0

    created = recording.post_recording_mediaretentionpolicies(policy_create("mifid-voice", queue_ids, 90, 1827))
    assert isinstance(created, sdk.Policy)
    assert created.id and created.name == "mifid-voice"
    assert created.created_date is not None and created.self_uri.endswith(created.id)
    assert [q.id for q in created.conditions.for_queues] == queue_ids
    assert created.actions.retention_duration.delete_retention.days == 1827

    listing = recording.get_recording_mediaretentionpolicies(page_size=25, name="mifid-voice")
    assert isinstance(listing, sdk.PolicyEntityListing)
    assert [p.id for p in listing.entities] == [created.id]

    fetched = recording.get_recording_mediaretentionpolicy(created.id)
    assert fetched.actions.retention_duration.archive_retention.days == 90
    assert fetched.actions.retention_duration.archive_retention.storage_medium == "CLOUDARCHIVE"

    fetched.actions.retention_duration.delete_retention.days = 2557
    fetched.conditions.for_queues = fetched.conditions.for_queues[:1]
    updated = recording.put_recording_mediaretentionpolicy(created.id, fetched)
    assert updated.actions.retention_duration.delete_retention.days == 2557
    assert [q.id for q in updated.conditions.for_queues] == queue_ids[:1]
    assert updated.created_date == created.created_date

    recording.delete_recording_mediaretentionpolicy(created.id)
    with pytest.raises(ApiException) as missing:
        recording.get_recording_mediaretentionpolicy(created.id)
    assert missing.value.status == 404


def test_sdk_reads_bulk_estate_pages(sandbox: GenesysSandbox, client: Any) -> None:
    sandbox.add_bulk(queues=30, policies=12)
    page = sdk.RecordingApi(client).get_recording_mediaretentionpolicies(page_size=10, page_number=2)
    assert (page.total, page.page_count, len(page.entities)) == (12, 2, 2)
    assert all(p.conditions.for_queues and p.actions.retention_duration for p in page.entities)
    queues = sdk.RoutingApi(client).get_routing_queues(page_size=100, name="bench-queue-*")
    assert queues.total == 30


def test_sdk_audit_query_round_trip(client: Any) -> None:
    recording = sdk.RecordingApi(client)
    created = recording.post_recording_mediaretentionpolicies(policy_create("sec-17a4", [], 30, 1096))
    audit = sdk.AuditApi(client)
    request = sdk.AuditQueryRequest()
    request.interval = "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"
    request.service_name = "Quality"
    entity_filter = sdk.AuditQueryFilter()
    entity_filter.pcProperty = "EntityId"
    entity_filter.value = created.id
    request.filters = [entity_filter]
    status = audit.post_audits_query(request)
    assert status.state == "Succeeded"
    assert audit.get_audits_query_transaction_id(status.id).id == status.id
    results = audit.get_audits_query_transaction_id_results(status.id, page_size=10)
    assert isinstance(results, sdk.AuditQueryExecutionResultsResponse)
    [entry] = results.entities
    assert isinstance(entry, sdk.AuditLogMessage)
    assert (entry.action, entry.entity_type, entry.entity.id) == ("Create", "Policy", created.id)
    assert entry.client.id == "recon-sandbox" and entry.level == "USER" and entry.status == "SUCCESS"
    assert entry.remote_ip == ["127.0.0.1"]
    assert "name" in [c.pcProperty for c in entry.property_changes]


def test_sdk_analytics_and_transcript_search(client: Any) -> None:
    query = sdk.ConversationQuery()
    query.interval = f"{iso(SEED_EPOCH - timedelta(days=HISTORY_DAYS))}/{iso(SEED_EPOCH + timedelta(days=1))}"
    query.order = "desc"
    paging = sdk.PagingSpec()
    paging.page_size = 5
    paging.page_number = 1
    query.paging = paging
    details = sdk.ConversationsApi(client).post_analytics_conversations_details_query(query)
    assert details.total_hits == CONVERSATION_COUNT and len(details.conversations) == 5
    conv = details.conversations[0]
    assert conv.conversation_start >= details.conversations[1].conversation_start
    agent = next(p for p in conv.participants if p.purpose == "agent")
    assert agent.user_id and agent.sessions[0].media_type == "voice"
    assert agent.sessions[0].segments[0].segment_type == "interact"

    search = sdk.TranscriptSearchRequest()
    search.types = ["transcripts"]
    search.page_size = 10
    criterion = sdk.TranscriptSearchCriteria()
    criterion.type = "PHRASE"
    criterion.fields = ["transcript.content"]
    criterion.value = "confirming now"
    search.query = [criterion]
    found = sdk.SpeechTextAnalyticsApi(client).post_speechandtextanalytics_transcripts_search(search)
    assert found.total == CONVERSATION_COUNT and found.page_count == math.ceil(CONVERSATION_COUNT / 10)
    assert {"conversationId", "communicationId", "startTime"} <= set(found.results[0])
