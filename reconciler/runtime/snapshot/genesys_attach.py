"""Snapshots onto Genesys Cloud calls: the injector's `Attacher` over the platform API.

    recording_id  GET   /api/v2/conversations/{conversationId}/recordingmetadata  -> the first recording's id
    attach        PATCH /api/v2/conversations/calls/{conversationId}/participants/{participantId}/attributes
                        {"attributes": {str: str}} (participant data travels with the recording export)

Both go through the shared GenesysClient (OAuth, rate limiter, retries on 429/5xx), at most
`concurrency` (default 32) at once: a burst of call starts queues here, in order, rather than
as thousands of waiters inside the HTTP connection pool, whose bookkeeping grows with them.

Called by: the runtime service; tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.errors import NotFoundError


class GenesysAttacher:
    """See the module docstring."""

    def __init__(self, client: GenesysClient, concurrency: int = 32) -> None:
        self.client = client
        self._slots = asyncio.Semaphore(concurrency)

    async def recording_id(self, conversation_id: str) -> str | None:
        """The call's first recording, or None when the platform has none (yet). Read-only."""
        try:
            async with self._slots:
                recordings = await self.client.get(f"/api/v2/conversations/{conversation_id}/recordingmetadata")
        except NotFoundError:
            return None
        for recording in recordings if isinstance(recordings, list) else []:
            if isinstance(recording, dict) and recording.get("id"):
                return str(recording["id"])
        return None

    async def attach(self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]) -> None:
        """Merge `attributes` into the participant's data (a PATCH: idempotent)."""
        async with self._slots:
            await self.client.patch(
                f"/api/v2/conversations/calls/{conversation_id}/participants/{participant_id}/attributes",
                json={"attributes": dict(attributes)},
            )
