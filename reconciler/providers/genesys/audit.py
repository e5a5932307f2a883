"""Who changed an object, and when: drift attribution from the Genesys Cloud audit log.

Drift asks only about objects found drifted, so the cost is paid when there is something
to explain and never by plan. One audit query per entity type: `POST /api/v2/audits/query`
(serviceName, interval, a filter on the entity type) starts a query job; its status is
polled at `GET /api/v2/audits/query/{id}` (bounded) and the entries are read from
`GET /api/v2/audits/query/{id}/results` (cursor paging). For each object the newest entry
made by someone other than recon's own OAuth client is the answer: that is the person
(or tool) who moved it away from what recon applied.

The service names and entity types below are what the sandbox writes; they follow the
Genesys audit service mapping (`GET /api/v2/audits/query/servicemapping`) as far as it is
public. UNCONFIRMED for a real org: check them against that endpoint before relying on
attribution there. The look-back window is LOOKBACK_DAYS (the query interval limit is
UNCONFIRMED too). A failing audit query never fails drift: attribution is then left out.

Called by: the Genesys providers' `attribute` (reconciler.engine.drift).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.providers.base import Attribution, ResourceRef
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.errors import GenesysError

QUERY_PATH = "/api/v2/audits/query"
LOOKBACK_DAYS = 30
MAX_STATUS_POLLS = 50
POLL_INTERVAL_S = 0.1

AUDIT_ENTITIES: dict[str, tuple[str, str]] = {
    "recording-policy": ("Quality", "Policy"),
    "queue": ("Routing", "Queue"),
    "recording-settings": ("Quality", "RecordingSettings"),
}
"""recon's name for an audited collection → (serviceName, entityType) in the audit log."""


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class AuditTrail:
    """Reads the org's audit log for drift attribution. See the module docstring."""

    def __init__(
        self,
        client: GenesysClient,
        *,
        own_client_id: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client = client
        self.own_client_id = own_client_id
        self.clock = clock

    async def who_changed(self, collection: str, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        """The newest change to each ref (by id) not made by recon, by address."""
        wanted = {ref.id: ref.address for ref in refs if ref.id}
        if not wanted:
            return {}
        service, entity_type = AUDIT_ENTITIES[collection]
        try:
            entries = await self._query(service, entity_type)
        except GenesysError:
            return {}
        found: dict[str, Attribution] = {}
        for entry in sorted(entries, key=lambda e: str(e.get("eventDate", "")), reverse=True):
            entity_id = str((entry.get("entity") or {}).get("id", ""))
            address = wanted.get(entity_id)
            if address is None or address in found or self._by_recon(entry):
                continue
            user = entry.get("user") or {}
            by = user.get("name") or user.get("id")
            via = (entry.get("client") or {}).get("id")
            found[address] = Attribution(str(by) if by else None, entry.get("eventDate"), str(via) if via else None)
        return found

    def _by_recon(self, entry: dict[str, Any]) -> bool:
        client_id = (entry.get("client") or {}).get("id")
        user_id = (entry.get("user") or {}).get("id")
        return self.own_client_id in (client_id, user_id)

    async def _query(self, service: str, entity_type: str) -> list[dict[str, Any]]:
        now = self.clock()
        body = {
            "interval": f"{_utc(now - dt.timedelta(days=LOOKBACK_DAYS))}/{_utc(now + dt.timedelta(minutes=1))}",
            "serviceName": service,
            "filters": [{"property": "EntityType", "value": entity_type}],
            "sort": [{"name": "Timestamp", "sortOrder": "descending"}],
        }
        job = await self.client.post(QUERY_PATH, json=body)
        job_id = str(job.get("id", ""))
        state = str(job.get("state", ""))
        for _ in range(MAX_STATUS_POLLS):
            if state.lower() in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(POLL_INTERVAL_S)
            state = str((await self.client.get(f"{QUERY_PATH}/{job_id}")).get("state", ""))
        if state.lower() != "succeeded":
            return []
        entries: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            params: dict[str, Any] = {"pageSize": 500}
            if cursor:
                params["cursor"] = cursor
            page = await self.client.get(f"{QUERY_PATH}/{job_id}/results", params=params)
            entries.extend(e for e in page.get("entities") or [] if isinstance(e, dict))
            cursor = page.get("cursor")
            if not cursor:
                break
        return entries
