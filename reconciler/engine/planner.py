"""Compute a Plan: desired (manifests) vs live (providers' observe_all) vs recorded (state).

Three steps, only the middle one does I/O:
1. `desired_resources` — each managed resource's canonical attributes from its spec,
   completed by its provider's `expand` (which may read the platform, never write);
2. `observe` — one bulk `observe_all` per kind, all kinds concurrently; never writes;
3. `decide` — pure: one ResourceChange per address, with the reason and the safety class.

Decisions a compliance engineer relies on:
- An object found on the platform by its natural key but not in state is *adopted* (no
  second create): this is how an apply interrupted before recording an id converges, and
  how an existing org is onboarded after `recon export`.
- Resources in state but gone from the manifests are *orphaned*: shown, and deleted only
  with --prune. ArchiveBucket, LegalHold and RecordingSettings are never deleted by recon (RETAINED_KINDS):
  --forget removes them from state and leaves them on the platform; replacing one is
  forbidden outright, whatever the provider says.
- A change the provider classifies as forbidden blocks the whole plan (exit 3) and never
  reaches a provider; one-way changes need --allow-one-way at apply.

Called by: the CLI (`recon plan`, `recon apply` without a plan file), engine.drift, bench.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

from reconciler.engine.diff import canonical, changes, redacted, redacted_changes, touches
from reconciler.engine.plan import PLAN_LIFETIME, Plan, PlanBinding, PlanFinding, ResourceChange
from reconciler.gcpause import paused_gc
from reconciler.manifest.model import Estate
from reconciler.policy import Evaluation
from reconciler.providers.base import (
    Action,
    Attributes,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    ProviderSet,
    ResourceRef,
    Safety,
)
from reconciler.state.model import ResourceState, State

RETAINED_KINDS = frozenset({"ArchiveBucket", "LegalHold", "RecordingSettings"})
"""Kinds recon never deletes: an archive holds regulated records, a hold protects them, and
an org's recording settings cannot be deleted (only stop being managed)."""


@dataclass(frozen=True, slots=True)
class PlanOptions:
    target: str
    prune: bool = False
    forget: bool = False
    lifetime: dt.timedelta = PLAN_LIFETIME


@dataclass(frozen=True, slots=True)
class Desired:
    address: str
    kind: str
    name: str
    attributes: Attributes
    depends_on: tuple[str, ...]
    declared_at: str
    renamed_from: tuple[str, ...] = ()
    """Addresses this resource had before (metadata.renamedFrom), newest intent first."""


def estate_view(estate: Estate) -> dict[str, dict[str, Attributes]]:
    """Every declared resource's spec (manifest shape, by alias), by kind then name."""
    view: dict[str, dict[str, Attributes]] = {}
    for resource in estate.resources.values():
        view.setdefault(resource.kind, {})[resource.name] = resource.spec.model_dump(mode="json", by_alias=True)
    return view


async def desired_resources(estate: Estate, state: State, providers: ProviderSet) -> dict[str, Desired]:
    """Every resource of a kind the target manages, with canonical attributes: its spec,
    completed by its provider's `expand` (kinds concurrently), then normalised."""
    providers.new_pass()
    view = estate_view(estate)
    managed = [r for r in estate.resources.values() if providers.get(r.kind) is not None]
    kinds = list(dict.fromkeys(r.kind for r in managed))

    async def expand_kind(kind: str) -> dict[str, Attributes]:
        provider = providers.get(kind)
        assert provider is not None
        recorded = {r.name: r.attributes for r in state.resources.values() if r.kind == kind}
        return await provider.expand(view[kind], ExpandContext(view, recorded))

    expanded = dict(zip(kinds, await asyncio.gather(*(expand_kind(kind) for kind in kinds)), strict=True))
    desired: dict[str, Desired] = {}
    for resource in managed:
        provider = providers.get(resource.kind)
        assert provider is not None
        address = resource.address
        desired[address] = Desired(
            address=address,
            kind=resource.kind,
            name=resource.name,
            attributes=canonical(provider.normalise(expanded[resource.kind][resource.name]), provider.schema),
            depends_on=tuple(sorted(estate.depends_on.get(address, ()))),
            declared_at=str(resource.location()),
            renamed_from=tuple(f"{resource.kind}/{old}" for old in resource.metadata.renamedFrom),
        )
    return desired


def moves(desired: dict[str, Desired], state: State) -> dict[str, str]:
    """New address → the old address whose state record it takes over (a rename): the
    first `renamedFrom` name recorded in state, when the new name is not recorded yet and
    no other declared resource still uses the old name."""
    found: dict[str, str] = {}
    for address, item in desired.items():
        if address in state.resources:
            continue
        old = next((a for a in item.renamed_from if a in state.resources and a not in desired), None)
        if old is not None and old not in found.values():
            found[address] = old
    return found


def refs_to_observe(desired: dict[str, Desired], state: State, providers: ProviderSet) -> list[ResourceRef]:
    """One ref per managed address in the manifests or in state, with the recorded id and
    the recorded attributes."""
    refs: dict[str, ResourceRef] = {}
    moved = moves(desired, state)
    for address, item in desired.items():
        recorded = state.resources.get(moved.get(address, address))
        refs[address] = (
            ResourceRef(item.kind, item.name, recorded.id, recorded.attributes)
            if recorded
            else ResourceRef(item.kind, item.name)
        )
    taken = set(moved.values())
    for address, recorded in state.resources.items():
        if address not in refs and address not in taken and providers.get(recorded.kind) is not None:
            refs[address] = ResourceRef(recorded.kind, recorded.name, recorded.id, recorded.attributes)
    return list(refs.values())


async def _observe_once(providers: ProviderSet, refs: Iterable[ResourceRef]) -> dict[str, Observed]:
    by_kind: dict[str, list[ResourceRef]] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref)
    kinds = [kind for kind in by_kind if providers.get(kind) is not None]

    async def observe_kind(kind: str) -> dict[str, Observed]:
        provider = providers.get(kind)
        assert provider is not None
        return await provider.observe_all(by_kind[kind])

    results = await asyncio.gather(*(observe_kind(kind) for kind in kinds))
    live: dict[str, Observed] = {}
    for result in results:
        live.update(result)
    return live


async def observe(providers: ProviderSet, refs: Iterable[ResourceRef]) -> dict[str, Observed]:
    """Live objects by address: one bulk observe_all per kind, kinds concurrently.

    A ref whose recorded id is not found is looked up again by natural key (a second bulk
    call, only for those): the object may have been re-created under the same name by hand,
    or replaced by an apply that was interrupted before recording the new id."""
    refs = list(refs)
    live = await _observe_once(providers, refs)
    retry = [ResourceRef(r.kind, r.name, None, r.recorded) for r in refs if r.id is not None and r.address not in live]
    if retry:
        live.update(await _observe_once(providers, retry))
    return live


def live_attributes(observed: Observed, providers: ProviderSet) -> Attributes:
    provider = providers.get(observed.kind)
    assert provider is not None
    return canonical(provider.normalise(observed.attributes), provider.schema)


def _classify(providers: ProviderSet, change: ResourceChange) -> Classification:
    if change.action in (Action.NOOP, Action.FORGET):
        return Classification(Safety.REVERSIBLE)
    if change.kind in RETAINED_KINDS and change.action in (Action.DELETE, Action.REPLACE):
        return Classification(
            Safety.FORBIDDEN,
            f"recon never deletes a {change.kind}; {change.action.value} would delete it "
            "(change the manifest back, or create a new resource under a new name)",
        )
    provider = providers.get(change.kind)
    assert provider is not None
    return provider.classify(
        ProposedChange(change.kind, change.name, change.action, change.before, change.after, change.attributes)
    )


def decide(
    desired: dict[str, Desired],
    state: State,
    live: dict[str, Observed],
    providers: ProviderSet,
    options: PlanOptions,
) -> list[ResourceChange]:
    """One ResourceChange per address (manifest order, then orphans in state order). Pure."""
    result: list[ResourceChange] = []
    moved = moves(desired, state)
    for address, item in desired.items():
        recorded = state.resources.get(moved.get(address, address))
        change = _declared(item, recorded, live.get(address), providers, moved.get(address))
        change = replace(change, previous_depends_on=tuple(recorded.depends_on) if recorded else ())
        result.append(_with_context(change, item.depends_on, item.declared_at, providers))
    taken = set(moved.values())
    for address, recorded in state.resources.items():
        if address in desired or address in taken or providers.get(recorded.kind) is None:
            continue
        observed = live.get(address)
        result.append(_orphan(address, recorded.kind, recorded.name, observed, recorded.depends_on, providers, options))
    return result


def _declared(
    item: Desired,
    recorded: ResourceState | None,
    observed: Observed | None,
    providers: ProviderSet,
    moved_from: str | None,
) -> ResourceChange:
    """The change for one declared resource (`moved_from`: its state record's old address)."""
    provider = providers.get(item.kind)
    assert provider is not None
    if observed is None:
        reason = (
            "recorded in state but missing on the platform (deleted outside recon); will be created again"
            if recorded is not None and recorded.applied
            else "declared in the manifests, not on the platform"
        )
        return ResourceChange(
            item.address,
            item.kind,
            item.name,
            Action.CREATE,
            Safety.REVERSIBLE,
            reason,
            after=item.attributes,
            moved_from=moved_from,
        )
    before = live_attributes(observed, providers)
    diff = changes(before, item.attributes, provider.schema)
    adopt = recorded is None or recorded.id != observed.id or recorded.pending is not None
    renamed = f"renamed from {moved_from.split('/', 1)[1]}" if moved_from else ""
    if moved_from and not provider.schema.renamable:
        action, reason = Action.REPLACE, f"{renamed}; a {item.kind} cannot be renamed in place"
    elif moved_from:
        action = Action.UPDATE
        reason = renamed + (f"; {len(diff)} attribute(s) differ from the manifests" if diff else "")
    elif not diff:
        action, reason = Action.NOOP, "matches the manifests"
        if adopt:
            reason = "exists on the platform as declared but is not recorded in state; apply records it"
    elif touches(diff, provider.schema.replace_paths):
        fixed = ", ".join(c.dotted for c in diff if touches((c,), provider.schema.replace_paths))
        action, reason = Action.REPLACE, f"{fixed} cannot be changed in place"
    else:
        action, reason = Action.UPDATE, f"{len(diff)} attribute(s) differ from the manifests"
    return ResourceChange(
        item.address,
        item.kind,
        item.name,
        action,
        Safety.REVERSIBLE,
        reason,
        id=observed.id,
        before=before,
        after=item.attributes,
        attributes=diff,
        adopt=adopt and action is not Action.REPLACE,
        moved_from=moved_from,
    )


def _with_context(
    change: ResourceChange,
    depends_on: Iterable[str],
    declared_at: str | None,
    providers: ProviderSet,
    *,
    previous: tuple[str, ...] | None = None,
) -> ResourceChange:
    """Classify `change` on the real live values, then keep only redacted live values in it:
    manifests hold no secrets (the loader refuses them), a platform may (pasted by hand)."""
    classification = _classify(providers, change)
    live_differs = change.attributes or change.orphaned
    return replace(
        change,
        before=redacted(change.before) if live_differs else change.before,
        attributes=redacted_changes(change.attributes, live_side="before"),
        safety=classification.safety,
        safety_reason=classification.reason,
        depends_on=tuple(depends_on),
        previous_depends_on=change.previous_depends_on if previous is None else previous,
        declared_at=declared_at,
    )


def _orphan(
    address: str,
    kind: str,
    name: str,
    observed: Observed | None,
    depends_on: Iterable[str],
    providers: ProviderSet,
    options: PlanOptions,
) -> ResourceChange:
    before = live_attributes(observed, providers) if observed else None
    object_id = observed.id if observed else None
    if observed is None:
        action, reason = Action.FORGET, "gone from the manifests and from the platform; only state still lists it"
    elif kind in RETAINED_KINDS:
        if options.forget:
            action, reason = Action.FORGET, f"--forget: recon stops managing this {kind} and leaves it on the platform"
        else:
            action = Action.NOOP
            reason = f"removed from the manifests; recon never deletes a {kind} (--forget stops managing it)"
    elif options.prune:
        action, reason = Action.DELETE, "removed from the manifests (--prune)"
    else:
        action, reason = Action.NOOP, "removed from the manifests; kept because --prune was not given"
    change = ResourceChange(
        address, kind, name, action, Safety.REVERSIBLE, reason, id=object_id, before=before, orphaned=True
    )
    return _with_context(change, (), None, providers, previous=tuple(depends_on))


def plan_findings(evaluation: Evaluation) -> list[PlanFinding]:
    """The rule packs' findings, frozen into plain values (waived ones kept, marked)."""
    frozen = [
        PlanFinding(f.rule_id, f.severity.value, f.resource, f.message, str(f.location), f.field, f.remediation)
        for f in evaluation.findings
    ]
    frozen.extend(
        PlanFinding(
            w.finding.rule_id,
            w.finding.severity.value,
            w.finding.resource,
            f"{w.finding.message} (waived by {w.waiver})",
            str(w.finding.location),
            w.finding.field,
            w.finding.remediation,
            waived=True,
        )
        for w in evaluation.waived
    )
    return frozen


def binding_lineage(state: State) -> str:
    """The lineage a plan binds to: "" for an empty state at serial 0 (no state yet), whose
    lineage is only fixed when the first apply writes it."""
    return "" if state.serial == 0 and not state.resources else state.lineage


async def make_plan(
    estate: Estate,
    evaluation: Evaluation,
    state: State,
    providers: ProviderSet,
    options: PlanOptions,
    *,
    manifest_digest: str,
    now: dt.datetime,
) -> Plan:
    """The plan for `estate` against the live target and `state`. Never writes anything.

    The cyclic collector is paused (see reconciler.gcpause): with a large estate alive, its
    full collections over long-lived acyclic data cost more than the plan itself."""
    with paused_gc():
        desired = await desired_resources(estate, state, providers)
        live = await observe(providers, refs_to_observe(desired, state, providers))
        resource_changes = decide(desired, state, live, providers, options)
    return Plan(
        binding=PlanBinding(binding_lineage(state), state.serial, manifest_digest, options.target),
        created=now,
        expires=now + options.lifetime,
        changes=resource_changes,
        findings=plan_findings(evaluation),
        options={"prune": options.prune, "forget": options.forget},
    )
