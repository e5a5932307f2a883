"""What the platform says it recorded: the org's id and the conversations of a period.

`organization_id` reads `GET /api/v2/organizations/me` (the archive's top folder is the org
id). `recorded_conversations` reads the analytics details query
(`POST /api/v2/analytics/conversations/details/query`) for conversations that started in
[start, end): paged (pageSize 100, the API's maximum) and split into windows of at most
`WINDOW` days (the API limits a query's interval; 7 days is safely inside it, UNCONFIRMED
exactly). Every voice conversation counts as recorded: recon's policies record every
interaction on regulated queues, so a conversation with no recording in the archive is a gap
to look at, not a filter to apply (UNCONFIRMED: a real org with unrecorded queues would add a
segment filter here).

Called by: `recon verify-archive` (reconciler.cli.archive_commands).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.errors import ResponseError

ORGANIZATION_PATH = "/api/v2/organizations/me"
DETAILS_PATH = "/api/v2/analytics/conversations/details/query"
PAGE_SIZE = 100
MAX_PAGES = 10_000
WINDOW = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Participant:
    """One participant as analytics reports it: participantId, purpose, userId (agents)."""

    id: str
    purpose: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformConversation:
    """A conversation the platform reports, with what its archived metadata must repeat."""

    conversation_id: str
    start: dt.datetime
    end: dt.datetime | None
    participants: frozenset[Participant]


def _utc(text: Any, endpoint: str, field: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ResponseError(endpoint=endpoint, problem=f"{field} is not an ISO-8601 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _conversation(raw: Any) -> PlatformConversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("conversationId"), str):
        raise ResponseError(endpoint=DETAILS_PATH, problem="a conversation without conversationId")
    participants = frozenset(
        Participant(str(p.get("participantId", "")), str(p.get("purpose", "")), p.get("userId") or None)
        for p in raw.get("participants") or []
        if isinstance(p, dict)
    )
    end = raw.get("conversationEnd")
    return PlatformConversation(
        conversation_id=raw["conversationId"],
        start=_utc(raw.get("conversationStart"), DETAILS_PATH, "conversationStart"),
        end=_utc(end, DETAILS_PATH, "conversationEnd") if end else None,
        participants=participants,
    )


async def organization_id(client: GenesysClient) -> str:
    """The org's id (the top folder of its S3 recording export)."""
    body = await client.get(ORGANIZATION_PATH)
    found = body.get("id") if isinstance(body, dict) else None
    if not isinstance(found, str) or not found:
        raise ResponseError(endpoint=ORGANIZATION_PATH, problem="no organization id in the answer", field="id")
    return found


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def recorded_conversations(
    client: GenesysClient, start: dt.datetime, end: dt.datetime
) -> list[PlatformConversation]:
    """The conversations that started in [start, end), ordered by start, each once."""
    found: dict[str, PlatformConversation] = {}
    low = start
    while low < end:
        high = min(low + WINDOW, end)
        for number in range(1, MAX_PAGES):
            body = {
                "interval": f"{_iso(low)}/{_iso(high)}",
                "order": "asc",
                "orderBy": "conversationStart",
                "paging": {"pageSize": PAGE_SIZE, "pageNumber": number},
            }
            page = await client.post(DETAILS_PATH, json=body)
            conversations = page.get("conversations") or [] if isinstance(page, dict) else []
            for raw in conversations:
                conversation = _conversation(raw)
                found.setdefault(conversation.conversation_id, conversation)
            if len(conversations) < PAGE_SIZE:
                break
        low = high
    return sorted(found.values(), key=lambda c: (c.start, c.conversation_id))
