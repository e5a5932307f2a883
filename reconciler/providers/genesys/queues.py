"""Queue ↔ a Genesys Cloud routing queue.

Attributes in plans (only what recon manages on the queue):

    suppressInQueueCallRecording   false on a regulated queue: recordings of calls waiting
                                   in queue are never suppressed (absent = not managed)
    description                    when the manifest gives one (absent = not managed)

A queue's other fields (routing rules, ACW, skills, wrap-up codes, flows, members, media
settings) are set in the console or by other tools; recon never changes them. Writes are
read-modify-write (`GET` then `PUT` of the whole queue, since the API has no PATCH), so
those fields are kept; observe reports only the fields recon manages for that queue (the
ones the manifests ask for now, or recon applied last). A rename is an update.

Members, region and clientRegion are not written here: membership belongs to the capture
verification side and the region is a property of the target org.

Called by: reconciler.providers.genesys.provider (the Genesys ProviderSet).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.providers.base import (
    Action,
    Attributes,
    AttributeSchema,
    Attribution,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    ResourceRef,
    Safety,
)
from reconciler.providers.genesys.audit import AuditTrail
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.directory import QUEUES_PATH, Directory
from reconciler.providers.genesys.objects import delete_if_present, find_by_name, read_for_update

SUPPRESS = "suppressInQueueCallRecording"
MANAGED_FIELDS = (SUPPRESS, "description")
QUEUE_SCHEMA = AttributeSchema(renamable=True, exportable=False)


def queue_attributes(spec: Mapping[str, Any]) -> Attributes:
    """What a Queue spec asks of the platform (see the module docstring)."""
    attributes: Attributes = {}
    if spec.get("regulated"):
        attributes[SUPPRESS] = False
    if spec.get("description"):
        attributes["description"] = str(spec["description"])
    return attributes


def project(queue: Mapping[str, Any], managed: set[str]) -> Attributes:
    """The managed fields of a live queue (a managed field unset on the platform is absent)."""
    return {key: queue[key] for key in MANAGED_FIELDS if key in managed and queue.get(key) is not None}


def queue_body(name: str, attributes: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The live queue with recon's fields and name set; everything else kept."""
    body: dict[str, Any] = copy.deepcopy(dict(current)) if current else {}
    body["name"] = name
    for key in MANAGED_FIELDS:
        if key in attributes:
            body[key] = attributes[key]
    for platform_owned in ("id", "selfUri", "dateCreated", "dateModified", "modifiedBy", "memberCount"):
        body.pop(platform_owned, None)
    return body


def classify_queue(change: ProposedChange) -> Classification:
    """Nothing recon writes to a queue loses a recording: every change is reversible.
    (Turning suppression *on* is never planned: the manifests cannot ask for it.)"""
    if change.action is Action.UPDATE and (change.after or {}).get(SUPPRESS) is True:
        return Classification(Safety.FORBIDDEN, "a regulated queue must not suppress in-queue recording")
    return Classification(Safety.REVERSIBLE)


class QueueProvider:
    """Queue on Genesys Cloud. See the module docstring."""

    kind = "Queue"
    schema = QUEUE_SCHEMA

    def __init__(self, client: GenesysClient, directory: Directory, audit: AuditTrail) -> None:
        self.client = client
        self.directory = directory
        self.audit = audit
        self._wanted: dict[str, set[str]] = {}

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """The managed fields per queue; remembered so observe reports the same fields."""
        expanded = {name: queue_attributes(spec) for name, spec in desired.items()}
        self._wanted = {name: set(attributes) for name, attributes in expanded.items()}
        return expanded

    def _managed(self, ref: ResourceRef) -> set[str]:
        return self._wanted.get(ref.name, set()) | set(ref.recorded or {})

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """The pass's one paged list of queues; by id, else by name."""
        if not refs:
            return {}
        queues = await self.directory.queues()
        by_name = {str(q.get("name")): q for q in queues.values()}
        found: dict[str, Observed] = {}
        for ref in refs:
            queue = queues.get(ref.id) if ref.id is not None else by_name.get(ref.name)
            if queue is not None:
                found[ref.address] = Observed(self.kind, ref.name, str(queue["id"]), project(queue, self._managed(ref)))
        return found

    async def discover(self) -> list[Observed]:
        return [
            Observed(self.kind, str(q.get("name")), qid, project(q, {SUPPRESS, "description"}))
            for qid, q in (await self.directory.queues()).items()
        ]

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """POST a queue; when one with this name exists, update it instead."""
        existing = await find_by_name(self.client, QUEUES_PATH, name)
        if existing is not None:
            return await self.update(ResourceRef(self.kind, name, str(existing["id"])), attributes)
        created = await self.client.post(QUEUES_PATH, json=queue_body(name, attributes, None))
        self.directory.remember_queue(created)
        return Observed(self.kind, name, str(created["id"]), project(created, set(attributes)))

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """GET the queue, set recon's fields and the name, PUT it whole."""
        object_id, current = await read_for_update(self.client, QUEUES_PATH, ref, "routing queue")
        updated = await self.client.put(f"{QUEUES_PATH}/{object_id}", json=queue_body(ref.name, attributes, current))
        self.directory.remember_queue(updated)
        return Observed(self.kind, ref.name, object_id, project(updated, set(attributes)))

    async def delete(self, ref: ResourceRef) -> None:
        self.directory.forget_queue(await delete_if_present(self.client, QUEUES_PATH, ref))

    def normalise(self, attributes: Attributes) -> Attributes:
        return copy.deepcopy(attributes)

    def classify(self, change: ProposedChange) -> Classification:
        return classify_queue(change)

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        return await self.audit.who_changed("queue", refs)

    async def aclose(self) -> None:
        """The shared client is closed by the ProviderSet's owner."""
