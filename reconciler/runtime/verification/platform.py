"""The recording platform's side of capture verification: Genesys Cloud recordings as
`Recording`s tied to trader ids.

    conversations  POST /api/v2/analytics/conversations/details/query   (paged, 7-day windows)
    users          GET  /api/v2/users                                   (paged, once per pass)
    recordings     GET  /api/v2/conversations/{conversationId}/recordingmetadata

A conversation counts when it has ended and one of its agent participants is a user the
CollectorTopology maps to a trader (`traders_by_user`: e-mail, lower case -> trader id);
every other conversation cannot meet a CDR and costs no further request. Each counted
conversation's recordings come from its recording metadata, one request each (at most
`concurrency` at once, under the client's rate limiter): the analytics interval says when
the call was connected, the metadata says what was captured, and a recording shorter than
the call is exactly what "partial" means. A conversation whose metadata lists no recording
yields nothing (its CDR is then not recorded, or pending within the grace).

`PlatformRecordings` keeps what it has read for ended conversations that have recordings (the
metadata does not change once the call has ended), so the continuous verifier, which looks at
the same sliding window every poll, asks the platform only about conversations it has not
seen, or that had no recording yet (a late recording is found when it lands).

Called by: `recon verify` (reconciler.cli.verify_commands) and the continuous verifier
(reconciler.runtime.verification.continuous).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.directory import Directory
from reconciler.providers.genesys.errors import NotFoundError
from reconciler.providers.genesys.recordings import PlatformConversation, recorded_conversations
from reconciler.runtime.verification.model import Recording, to_ms

METADATA_PATH = "/api/v2/conversations/{}/recordingmetadata"
AUDIO = frozenset({"audio", "call", "voice"})


def _ms(text: Any) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_ms(moment)


def recordings_from_metadata(conversation_id: str, trader_id: str, metadata: Any) -> list[Recording]:
    """The audio recordings of one conversation's recording metadata (pure). An entry without
    an id, or without a start and end, is skipped: it cannot be matched."""
    found = []
    for entry in metadata if isinstance(metadata, list) else []:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        media = str(entry.get("media") or "audio").lower()
        if media not in AUDIO:
            continue
        start, end = _ms(entry.get("startTime")), _ms(entry.get("endTime"))
        if start is None or end is None or end < start:
            continue
        found.append(Recording(str(entry["id"]), conversation_id, trader_id, start, end - start))
    return found


class PlatformRecordings:
    """Recordings of the traders' calls in a period (see the module docstring)."""

    def __init__(self, client: GenesysClient, traders_by_user: Mapping[str, str], *, concurrency: int = 8) -> None:
        self.client = client
        self.traders_by_user = {user.lower(): trader for user, trader in traders_by_user.items()}
        self.directory = Directory(client)
        self._slots = asyncio.Semaphore(concurrency)
        self._seen: dict[str, list[Recording]] = {}
        self.conversations_read = 0
        """How many conversations' metadata this instance has requested (for reports and benches)."""

    async def _trader_of_user(self) -> tuple[dict[str, str], set[str]]:
        """(trader id by platform user id, every user id the listing has)."""
        ids = await self.directory.user_ids()
        traders = {
            user_id: self.traders_by_user[email] for email, user_id in ids.items() if email in self.traders_by_user
        }
        return traders, set(ids.values())

    async def recordings(self, start: dt.datetime, end: dt.datetime) -> list[Recording]:
        """The recordings of conversations that started in [start, end) and have ended, on a
        trader's agent participant. Read-only."""
        conversations = await recorded_conversations(self.client, start, end)
        by_user, known = await self._trader_of_user()
        agents = {p.user_id for c in conversations for p in c.participants if p.purpose == "agent" and p.user_id}
        if agents - known:
            # An agent the listing does not have is new on the platform: list users once more.
            self.directory.new_pass()
            by_user, known = await self._trader_of_user()
        wanted = [
            (conversation, trader)
            for conversation in conversations
            if conversation.end is not None and (trader := self._trader(conversation, by_user)) is not None
        ]
        await asyncio.gather(
            *(self._read(c.conversation_id, trader) for c, trader in wanted if c.conversation_id not in self._seen)
        )
        out: list[Recording] = []
        for conversation, _ in wanted:
            out += self._seen.get(conversation.conversation_id, ())
        return out

    def forget_before(self, moment: dt.datetime) -> None:
        """Drop what was read for conversations that started before `moment` (the continuous
        verifier's window has moved past them)."""
        cutoff = to_ms(moment)
        stale = [cid for cid, recs in self._seen.items() if recs and recs[0].start_ms < cutoff]
        for conversation_id in stale:
            del self._seen[conversation_id]

    @staticmethod
    def _trader(conversation: PlatformConversation, by_user: Mapping[str, str]) -> str | None:
        for participant in sorted(conversation.participants, key=lambda p: p.id):
            user = participant.user_id
            if participant.purpose == "agent" and user is not None and user in by_user:
                return by_user[user]
        return None

    async def _read(self, conversation_id: str, trader_id: str) -> None:
        async with self._slots:
            try:
                metadata = await self.client.get(METADATA_PATH.format(conversation_id))
            except NotFoundError:
                metadata = []
        self.conversations_read += 1
        found = recordings_from_metadata(conversation_id, trader_id, metadata)
        if found:  # none yet: a late recording may still come, so ask again next time
            self._seen[conversation_id] = found
