"""RecordingSettings ↔ the org's recording settings (`GET/PUT /api/v2/recording/settings`).

The org has exactly one settings object, always present, so a RecordingSettings is adopted
on its first plan and never created or deleted. Attributes in plans keep the manifest's
names (what a reviewer wrote) and only the fields the manifest gives:

    regionalStorage                    ↔ regionalRecordingStorageEnabled
    stopWhenOnlyExternalParticipants   ↔ stopRecordingWhenOnlyExternalParticipants
    playbackLinkExpiry    "15m"        ↔ recordingPlaybackUrlTtl         (minutes)
    downloadLinkExpiry    "60m"        ↔ recordingBatchDownloadUrlTtl    (minutes)

Link lifetimes are compared in whole minutes ("1h" in a manifest is "60m" in the plan).
Writes are read-modify-write (GET, set recon's fields, PUT the whole object), so settings
recon does not manage (stream limits, screen recording) are kept. The region is which org,
a property of the target, and is not written. Removing the manifest stops managing the
settings (the engine treats the kind as retained: nothing is deleted or reset).

Called by: reconciler.providers.genesys.provider (the Genesys ProviderSet).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.durations import Duration
from reconciler.providers.base import (
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

SETTINGS_PATH = "/api/v2/recording/settings"
SETTINGS_ID = "recordingsettings"
"""The id the audit log gives the org's recording settings."""

FLAGS = {
    "regionalStorage": "regionalRecordingStorageEnabled",
    "stopWhenOnlyExternalParticipants": "stopRecordingWhenOnlyExternalParticipants",
}
LINK_MINUTES = {
    "playbackLinkExpiry": "recordingPlaybackUrlTtl",
    "downloadLinkExpiry": "recordingBatchDownloadUrlTtl",
}
MANAGED_FIELDS = (*FLAGS, *LINK_MINUTES)
SETTINGS_SCHEMA = AttributeSchema(renamable=True, exportable=False)


def _minutes(value: Any) -> str:
    return f"{Duration.parse(str(value)).milliseconds // 60_000}m"


def settings_attributes(spec: Mapping[str, Any]) -> Attributes:
    """What a RecordingSettings spec asks of the platform (absent fields are not managed)."""
    attributes: Attributes = {key: bool(spec[key]) for key in FLAGS if spec.get(key) is not None}
    attributes.update({key: _minutes(spec[key]) for key in LINK_MINUTES if spec.get(key) is not None})
    return attributes


def project(settings: Mapping[str, Any], managed: set[str]) -> Attributes:
    """The managed fields of the live settings, in manifest names; a field the platform
    does not report is absent (so a plan shows it being set)."""
    found: Attributes = {}
    for key, field in FLAGS.items():
        if key in managed and isinstance(settings.get(field), bool):
            found[key] = settings[field]
    for key, field in LINK_MINUTES.items():
        value = settings.get(field)
        if key in managed and isinstance(value, int) and not isinstance(value, bool):
            found[key] = f"{value}m"
    return found


def settings_body(attributes: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The live settings with recon's fields set; everything else kept."""
    body: dict[str, Any] = copy.deepcopy(dict(current))
    for key, field in FLAGS.items():
        if key in attributes:
            body[field] = bool(attributes[key])
    for key, field in LINK_MINUTES.items():
        if key in attributes:
            body[field] = Duration.parse(str(attributes[key])).milliseconds // 60_000
    return body


class RecordingSettingsProvider:
    """RecordingSettings on Genesys Cloud. See the module docstring."""

    kind = "RecordingSettings"
    schema = SETTINGS_SCHEMA

    def __init__(self, client: GenesysClient, audit: AuditTrail) -> None:
        self.client = client
        self.audit = audit
        self._wanted: dict[str, set[str]] = {}

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """The managed fields, in whole minutes; remembered so observe reports the same fields."""
        expanded = {name: settings_attributes(spec) for name, spec in desired.items()}
        self._wanted = {name: set(attributes) for name, attributes in expanded.items()}
        return expanded

    def _managed(self, ref: ResourceRef) -> set[str]:
        return self._wanted.get(ref.name, set()) | set(ref.recorded or {})

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """One GET of the settings, whatever the number of refs. Never writes."""
        if not refs:
            return {}
        settings = await self.client.get(SETTINGS_PATH)
        return {
            ref.address: Observed(self.kind, ref.name, SETTINGS_ID, project(settings, self._managed(ref)))
            for ref in refs
        }

    async def discover(self) -> list[Observed]:
        """The org's one settings object, every field recon can manage."""
        settings = await self.client.get(SETTINGS_PATH)
        return [Observed(self.kind, "recording-settings", SETTINGS_ID, project(settings, set(MANAGED_FIELDS)))]

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """The settings always exist: creating them is adopting and updating them."""
        return await self.update(ResourceRef(self.kind, name, SETTINGS_ID), attributes)

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """GET the settings, set recon's fields, PUT them whole. Idempotent."""
        current = await self.client.get(SETTINGS_PATH)
        updated = await self.client.put(SETTINGS_PATH, json=settings_body(attributes, current))
        return Observed(self.kind, ref.name, SETTINGS_ID, project(updated, set(attributes)))

    async def delete(self, ref: ResourceRef) -> None:
        """The org's settings cannot be deleted: this leaves them as they are. (The engine
        never asks: RecordingSettings is a retained kind, so removal means --forget.)"""

    def normalise(self, attributes: Attributes) -> Attributes:
        return copy.deepcopy(attributes)

    def classify(self, change: ProposedChange) -> Classification:
        """Every setting can be set back by another apply. Whether a value breaks a rule
        (e.g. recording stopping on external-only calls) is the rule packs' judgement."""
        return Classification(Safety.REVERSIBLE)

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        return await self.audit.who_changed("recording-settings", refs)

    async def aclose(self) -> None:
        """The shared client is closed by the ProviderSet's owner."""
