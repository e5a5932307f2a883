"""The sandbox's live-conversation API: what the runtime reads and writes while a call is on.

    GET   /api/v2/conversations/calls/{conversationId}                       GC  CallConversation
          -> {id, startTime, endTime, recordingState, participants: [{id, purpose, name,
              userId?, queueId?, attributes: {str: str}}]}
    PATCH /api/v2/conversations/calls/{conversationId}/participants/{participantId}/attributes
          GC  {"attributes": {str: str}} merged into the participant's attributes -> 202 (no body);
              a value that is not a string -> 400 naming the key; unknown participant -> 404
    GET   /api/v2/conversations/{conversationId}/recordingmetadata            GC  [Recording]
          -> [{id, conversationId, startTime, endTime, media: "audio", fileState: "AVAILABLE"}]

Participant ids are the ones the analytics details query and the notification events give
(`analytics.sub_id(conversation, "p{n}")`: customer, acd, then each agent), so one call has one
set of ids whichever API a client reads. Attributes live in memory and reach genesys.json at
the store's next save or at shutdown (`SandboxStore.flush`): a runtime patching a thousand
calls a second must not rewrite the org file a thousand times.

Called by: reconciler.sandbox.genesys_server (the routes). Imports only the stdlib and
sandbox siblings.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.analytics import sub_id
from reconciler.sandbox.recording_export import recording_id
from reconciler.sandbox.wire import ApiError, JsonObj, bad_request, require_object


def participants(conv: JsonObj) -> list[JsonObj]:
    """The call's participants in the order every sandbox API uses: customer, acd, agents."""
    conv_id, queue_id = str(conv["id"]), str(conv["queueId"])
    stored = conv.get("participants", [])
    external = next((p for p in stored if p.get("purpose") != "agent"), {"name": "Customer"})
    people: list[JsonObj] = [
        {"purpose": "customer" if conv.get("direction") == "inbound" else "external", "name": external.get("name")},
        {"purpose": "acd", "queueId": queue_id},
    ]
    people += [
        {"purpose": "agent", "userId": p.get("userId"), "name": p.get("name"), "queueId": queue_id}
        for p in stored
        if p.get("purpose") == "agent"
    ]
    return [
        {"id": sub_id(conv_id, f"p{n}"), **{k: v for k, v in person.items() if v is not None}}
        for n, person in enumerate(people)
    ]


def call_view(conv: JsonObj, attributes: dict[str, dict[str, str]]) -> JsonObj:
    """GET /api/v2/conversations/calls/{id}: the call with each participant's attributes."""
    return {
        "id": conv["id"],
        "startTime": conv["startTime"],
        "endTime": conv["endTime"],
        "recordingState": "active",
        "participants": [{**p, "attributes": dict(attributes.get(p["id"], {}))} for p in participants(conv)],
    }


def recording_metadata(conv: JsonObj) -> list[JsonObj]:
    """GET /api/v2/conversations/{id}/recordingmetadata: every sandbox call is recorded."""
    return [
        {
            "id": recording_id(str(conv["id"])),
            "conversationId": conv["id"],
            "startTime": conv["startTime"],
            "endTime": conv["endTime"],
            "media": "audio",
            "fileState": "AVAILABLE",
        }
    ]


def checked_attributes(conv: JsonObj, participant_id: str, body: Any) -> dict[str, str]:
    """The attributes a PATCH sets, after the platform's checks (ApiError otherwise)."""
    if participant_id not in {p["id"] for p in participants(conv)}:
        raise ApiError(404, "not.found", f"conversation {conv['id']} has no participant {participant_id}")
    given = require_object(require_object(body).get("attributes"), "attributes")
    for key, value in given.items():
        if not isinstance(value, str):
            raise bad_request(f"attribute {key!r} must be a string (participant data is text)")
    return {str(k): str(v) for k, v in given.items()}
