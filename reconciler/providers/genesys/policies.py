"""RecordingPolicy (+ its RetentionPolicy) ↔ a Genesys Cloud media retention policy.

Attributes in plans (recon's view of the platform object, one per RecordingPolicy):

    enabled            bool
    directions         set of INBOUND / OUTBOUND: call directions whose recordings the
                       policy retains (a direction recorded `always` or `flow`)
    queues             set of queue names (conditions.forQueues, ids mapped to names)
    archiveAfterDays   int, absent = never archived   (actions.retentionDuration.archiveRetention)
    deleteAfterDays    int, absent = never deleted    (actions.retentionDuration.deleteRetention)

`expand` builds them from the spec: the RetentionPolicy it names supplies the days
(`retain` becomes deleteAfterDays only when `deleteAfterRetention` is true; keeping a
recording forever satisfies any minimum), and the queues are `appliesTo.queues` plus every
Queue whose `recordingPolicy` names this policy. Spec fields with no place on a media
retention policy (regimes, internal / IVR recording modes, archive, encryptionKey,
metadataKeys) are checked by the rule packs and other providers, not written here.

Writes are read-modify-write: `update` GETs the policy and changes only the fields above
(and the name, for a rename), so media policies for chat, e-mail or messages, evaluation
assignments and anything else set in the console are kept. A rename is an update.

Called by: reconciler.providers.genesys.provider (the Genesys ProviderSet).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.durations import Duration
from reconciler.providers.base import (
    Action,
    Attributes,
    AttributeSchema,
    Attribution,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    ProviderError,
    ResourceRef,
    Safety,
)
from reconciler.providers.genesys.audit import AuditTrail
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.directory import Directory
from reconciler.providers.genesys.objects import delete_if_present, find_by_name, read_for_update

POLICIES_PATH = "/api/v2/recording/mediaretentionpolicies"
DIRECTIONS = {"inbound": "INBOUND", "outbound": "OUTBOUND"}
UNKNOWN_QUEUE = "<unknown queue {}>"
MANAGED_DESCRIPTION = "Managed by recon (recording compliance as code). Edit the manifests, not this policy."

POLICY_SCHEMA = AttributeSchema(set_paths=frozenset({("directions",), ("queues",)}), renamable=True, exportable=False)


# ---- pure mapping ----------------------------------------------------------------------


def policy_attributes(
    name: str, spec: Mapping[str, Any], retention_policies: Mapping[str, Attributes], queues: Mapping[str, Attributes]
) -> Attributes:
    """The platform attributes a RecordingPolicy spec asks for (see the module docstring)."""
    record = spec.get("record") or {}
    covered = set((spec.get("appliesTo") or {}).get("queues") or [])
    covered |= {queue for queue, qspec in queues.items() if qspec.get("recordingPolicy") == name}
    attributes: Attributes = {
        "enabled": bool(spec.get("enabled", True)),
        "directions": sorted(wire for mode, wire in DIRECTIONS.items() if record.get(mode, "never") != "never"),
        "queues": sorted(covered),
    }
    retention = retention_policies.get(str(spec.get("retention"))) if spec.get("retention") else None
    if retention is not None:
        if retention.get("archiveAfter"):
            attributes["archiveAfterDays"] = Duration.parse(str(retention["archiveAfter"])).whole_days
        if retention.get("deleteAfterRetention", True):
            attributes["deleteAfterDays"] = Duration.parse(str(retention["retain"])).whole_days
    return attributes


def attributes_from_wire(policy: Mapping[str, Any], queue_names: Mapping[str, str]) -> Attributes:
    """recon's view of a media retention policy as the API returns it."""
    call = ((policy.get("mediaPolicies") or {}).get("callPolicy")) or {}
    conditions = call.get("conditions") or {}
    actions = call.get("actions") or {}
    duration = actions.get("retentionDuration") or {}
    queue_ids = [q.get("id") for q in conditions.get("forQueues") or [] if isinstance(q, dict)]
    attributes: Attributes = {
        "enabled": bool(policy.get("enabled", True)),
        "directions": sorted(str(d) for d in conditions.get("directions") or []),
        "queues": sorted(queue_names.get(str(qid), UNKNOWN_QUEUE.format(qid)) for qid in queue_ids),
    }
    archive = (duration.get("archiveRetention") or {}).get("days")
    delete = (duration.get("deleteRetention") or {}).get("days")
    if isinstance(archive, int):
        attributes["archiveAfterDays"] = archive
    if isinstance(delete, int):
        attributes["deleteAfterDays"] = delete
    return attributes


def wire_from_attributes(
    name: str, attributes: Mapping[str, Any], queue_ids: Mapping[str, str], current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The body to PUT or POST: `current` (the live policy, for an update) with recon's
    fields set, everything else kept. ProviderError when a named queue has no id."""
    body: dict[str, Any] = copy.deepcopy(dict(current)) if current else {"description": MANAGED_DESCRIPTION}
    missing = [q for q in attributes.get("queues") or [] if q not in queue_ids]
    if missing:
        raise ProviderError(
            f"RecordingPolicy/{name} covers queue(s) {', '.join(missing)} that do not exist on Genesys Cloud",
            next_step="declare the queues in the manifests (apply creates them first) or fix the queue names",
        )
    body["name"] = name
    body["enabled"] = bool(attributes.get("enabled", True))
    media = body.setdefault("mediaPolicies", {})
    call = media.setdefault("callPolicy", {})
    conditions = call.setdefault("conditions", {})
    conditions["forQueues"] = [{"id": queue_ids[q]} for q in attributes.get("queues") or []]
    conditions["directions"] = list(attributes.get("directions") or [])
    actions = call.setdefault("actions", {})
    actions["retainRecording"] = True
    duration: dict[str, Any] = {}
    if attributes.get("archiveAfterDays") is not None:
        duration["archiveRetention"] = {"days": attributes["archiveAfterDays"], "storageMedium": "CLOUDARCHIVE"}
    if attributes.get("deleteAfterDays") is not None:
        duration["deleteRetention"] = {"days": attributes["deleteAfterDays"]}
    if duration:
        actions["retentionDuration"] = duration
    else:
        actions.pop("retentionDuration", None)
    for platform_owned in ("id", "selfUri", "createdDate", "modifiedDate"):
        body.pop(platform_owned, None)
    return body


def classify_policy(change: ProposedChange) -> Classification:
    """Changes that can lose recordings are one-way: once Genesys deletes a recording
    earlier than it would have, no apply brings it back. Everything else is reversible."""
    reasons: list[str] = []
    if change.action is Action.DELETE:
        reasons.append("recordings it retains fall back to the org default and may be deleted sooner")
    elif change.action is Action.UPDATE and change.before is not None and change.after is not None:
        before, after = change.before, change.after
        old_delete, new_delete = before.get("deleteAfterDays"), after.get("deleteAfterDays")
        if new_delete is not None and (old_delete is None or new_delete < old_delete):
            reasons.append(
                f"recordings will be deleted after {new_delete} days instead of "
                f"{'never' if old_delete is None else f'{old_delete} days'}"
            )
        if before.get("enabled", True) and not after.get("enabled", True):
            reasons.append("disabling the policy stops retaining new recordings")
        for key in ("queues", "directions"):
            lost = sorted(set(before.get(key) or []) - set(after.get(key) or []))
            if lost:
                reasons.append(f"{key} {', '.join(lost)} no longer covered")
    if reasons:
        return Classification(Safety.ONE_WAY, "; ".join(reasons))
    return Classification(Safety.REVERSIBLE)


def normalise_policy(attributes: Attributes) -> Attributes:
    """Sorted, de-duplicated sets; nothing else changes."""
    result = copy.deepcopy(attributes)
    for key in ("directions", "queues"):
        if isinstance(result.get(key), list):
            result[key] = sorted(set(result[key]))
    return result


# ---- the provider --------------------------------------------------------------------


class RecordingPolicyProvider:
    """RecordingPolicy on Genesys Cloud. See the module docstring."""

    kind = "RecordingPolicy"
    schema = POLICY_SCHEMA

    def __init__(self, client: GenesysClient, directory: Directory, audit: AuditTrail) -> None:
        self.client = client
        self.directory = directory
        self.audit = audit

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """Fold in the RetentionPolicy's days and the queues that name this policy. No I/O."""
        retention = context.estate.get("RetentionPolicy", {})
        queues = context.estate.get("Queue", {})
        return {name: policy_attributes(name, spec, retention, queues) for name, spec in desired.items()}

    async def _all(self) -> list[dict[str, Any]]:
        return [p async for p in self.client.paginate(POLICIES_PATH) if isinstance(p, dict)]

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """One paged list of policies (and the pass's shared queue list); by id, else by name."""
        if not refs:
            return {}
        policies = await self._all()
        names = await self.directory.queue_names()
        by_id = {str(p.get("id")): p for p in policies}
        by_name = {str(p.get("name")): p for p in policies}
        found: dict[str, Observed] = {}
        for ref in refs:
            policy = by_id.get(ref.id) if ref.id is not None else by_name.get(ref.name)
            if policy is not None:
                found[ref.address] = Observed(
                    self.kind, ref.name, str(policy["id"]), attributes_from_wire(policy, names)
                )
        return found

    async def discover(self) -> list[Observed]:
        names = await self.directory.queue_names()
        return [
            Observed(self.kind, str(p.get("name")), str(p["id"]), attributes_from_wire(p, names))
            for p in await self._all()
        ]

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """POST a new policy; when one with this name exists (an apply that crashed after
        creating it), update that one instead."""
        existing = await find_by_name(self.client, POLICIES_PATH, name)
        if existing is not None:
            return await self.update(ResourceRef(self.kind, name, str(existing["id"])), attributes)
        body = wire_from_attributes(name, attributes, await self.directory.queue_ids())
        created = await self.client.post(POLICIES_PATH, json=body)
        return Observed(
            self.kind, name, str(created["id"]), attributes_from_wire(created, await self.directory.queue_names())
        )

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """GET, change recon's fields (and the name), PUT."""
        object_id, current = await read_for_update(self.client, POLICIES_PATH, ref, "media retention policy")
        body = wire_from_attributes(ref.name, attributes, await self.directory.queue_ids(), current)
        updated = await self.client.put(f"{POLICIES_PATH}/{object_id}", json=body)
        names = await self.directory.queue_names()
        return Observed(self.kind, ref.name, object_id, attributes_from_wire(updated, names))

    async def delete(self, ref: ResourceRef) -> None:
        await delete_if_present(self.client, POLICIES_PATH, ref)

    def normalise(self, attributes: Attributes) -> Attributes:
        return normalise_policy(attributes)

    def classify(self, change: ProposedChange) -> Classification:
        return classify_policy(change)

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        return await self.audit.who_changed("recording-policy", refs)

    async def aclose(self) -> None:
        """The shared client is closed by the ProviderSet's owner."""
