"""Drift: compare the live estate with what recon last applied, and say which side moved.

For every resource in state, three versions exist: *applied* (state), *live* (observe_all)
and *desired* (manifests). applied→live differences are drift: someone changed the platform
outside recon (the platform's audit trail may say who). applied→desired differences are
pending changes (manifests edited, not applied yet): reported, but not drift. Resources
declared but never applied are pending creates. Never writes anything.

Called by: the CLI (`recon drift`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

from reconciler.engine.diff import changes, redacted_changes
from reconciler.engine.planner import desired_resources, live_attributes, observe, refs_to_observe
from reconciler.engine.reports import DRIFT_SIDES, DriftItem, DriftReport, DriftSide
from reconciler.gcpause import paused_gc
from reconciler.manifest.model import Estate
from reconciler.providers.base import Attribution, ProviderSet, ResourceRef
from reconciler.state.model import State


async def detect_drift(
    estate: Estate, state: State, providers: ProviderSet, *, target: str, now: dt.datetime
) -> DriftReport:
    with paused_gc():
        desired = await desired_resources(estate, state, providers)
        live = await observe(providers, refs_to_observe(desired, state, providers))
    report = DriftReport(target, now, len(set(desired) | set(state.resources)), state.lineage, state.serial)
    for address, recorded in state.resources.items():
        provider = providers.get(recorded.kind)
        if provider is None or not recorded.applied:
            continue
        wanted = desired.get(address)
        observed = live.get(address)
        declared_at = wanted.declared_at if wanted else None
        manifest_changes = changes(recorded.attributes, wanted.attributes if wanted else None, provider.schema)
        if observed is None:
            report.items.append(
                DriftItem(
                    address,
                    recorded.kind,
                    recorded.name,
                    DriftSide.LIVE_DELETED,
                    live_changes=changes(recorded.attributes, None, provider.schema),
                    manifest_changes=manifest_changes,
                    declared_at=declared_at,
                )
            )
            continue
        live_changes = redacted_changes(
            changes(recorded.attributes, live_attributes(observed, providers), provider.schema), live_side="after"
        )
        if live_changes and manifest_changes:
            side = DriftSide.BOTH
        elif live_changes:
            side = DriftSide.LIVE
        elif manifest_changes:
            side = DriftSide.MANIFESTS
        else:
            continue
        report.items.append(
            DriftItem(
                address,
                recorded.kind,
                recorded.name,
                side,
                live_changes=live_changes,
                manifest_changes=manifest_changes,
                changed_by=observed.changed_by if live_changes else None,
                declared_at=declared_at,
            )
        )
    for address, wanted in desired.items():
        known = state.resources.get(address)
        if known is None or not known.applied:
            report.items.append(
                DriftItem(
                    address,
                    wanted.kind,
                    wanted.name,
                    DriftSide.UNMANAGED,
                    manifest_changes=changes(None, wanted.attributes, providers.get(wanted.kind).schema),  # type: ignore[union-attr]
                    declared_at=wanted.declared_at,
                )
            )
    await attribute_drift(report, state, providers)
    return report


async def attribute_drift(report: DriftReport, state: State, providers: ProviderSet) -> None:
    """Fill in who changed each live-side drift item and when, from the providers' audit
    trails: one `attribute` call per kind, only for drifted objects, kinds concurrently."""
    by_kind: dict[str, list[ResourceRef]] = {}
    for item in report.items:
        recorded = state.resources.get(item.address)
        if item.side in DRIFT_SIDES and recorded is not None:
            by_kind.setdefault(item.kind, []).append(
                ResourceRef(item.kind, item.name, recorded.id, recorded.attributes)
            )

    async def attribute_kind(kind: str, refs: list[ResourceRef]) -> dict[str, Attribution]:
        provider = providers.get(kind)
        assert provider is not None
        return await provider.attribute(refs)

    found: dict[str, Attribution] = {}
    for result in await asyncio.gather(*(attribute_kind(kind, refs) for kind, refs in by_kind.items())):
        found.update(result)
    for index, item in enumerate(report.items):
        who = found.get(item.address)
        if who is not None:
            report.items[index] = replace(
                item, changed_by=who.by or item.changed_by, changed_at=who.at, changed_via=who.via
            )
