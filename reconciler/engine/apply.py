"""Execute a plan: exactly its changes, in dependency order, journaling every step to state.

For each change: an intent record is written to state *before* the provider call and the
result *after* it, so a crash at any point (kill -9 included) leaves a state that says
what may have happened; the next plan looks such objects up by natural key and adopts
them rather than creating duplicates. When a change fails, in-flight work finishes,
everything that depends on it is skipped, independent branches continue, and the result
lists exactly what succeeded, failed and was skipped.

`check_applicable` is the gate in front: a saved plan is applied only if its binding
still holds (same state lineage and serial, same manifests, same target, not expired),
it is not blocked, and one-way changes were allowed explicitly.

Called by: the CLI (`recon apply`), engine tests, bench/bench_engine.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.engine.graph import Node, run_graph
from reconciler.engine.plan import Plan, PlanFileError, ResourceChange
from reconciler.engine.planner import PlanOptions, make_plan
from reconciler.engine.reports import ApplyResult, Outcome, ResourceOutcome
from reconciler.engine.workspace import Workspace
from reconciler.errors import EXIT_BLOCKED, ReconError
from reconciler.gcpause import paused_gc
from reconciler.manifest.model import Estate
from reconciler.policy import Evaluation
from reconciler.providers.base import Action, Provider, ProviderSet, ResourceRef
from reconciler.state.backend import StateSession
from reconciler.state.model import ResourceState, State

DEFAULT_PARALLELISM = 10


class PlanBlockedError(ReconError):
    """The plan holds forbidden changes or error-severity findings; nothing is applied."""

    exit_code = EXIT_BLOCKED


class OneWayNotAllowedError(ReconError):
    """The plan holds one-way changes and --allow-one-way was not given."""


@dataclass(frozen=True, slots=True)
class ApplyEvent:
    """Progress: `phase` is "start" or "done"; `outcome` is set when done."""

    address: str
    action: Action
    phase: str
    outcome: Outcome | None = None
    message: str = ""


EventSink = Callable[[ApplyEvent], None]


def _blocked(plan: Plan, headline: str) -> PlanBlockedError:
    what = [f"{c.address}: {c.safety_reason or 'forbidden'}" for c in plan.forbidden]
    what += [f"{f.resource}: {f.rule_id} ({f.location})" for f in plan.blocking_findings]
    return PlanBlockedError(
        f"{headline}: " + "; ".join(what),
        next_step="fix the manifests (or record a Waiver for a finding), then plan again",
    )


def check_applicable(
    plan: Plan,
    state: State,
    *,
    manifest_digest: str,
    target: str,
    now: dt.datetime,
    allow_one_way: bool,
    source: str = "the plan",
) -> None:
    """Raise (and change nothing) unless `plan` may be applied now to `state`."""
    if plan.blocked:
        raise _blocked(plan, f"{source} is blocked and cannot be applied")
    binding = plan.binding
    if binding.target != target:
        raise PlanFileError(
            f"{source} was made for target '{binding.target}', but the project's target is '{target}'",
            next_step="apply it with the project it was made for, or plan again",
        )
    if now >= plan.expires:
        raise PlanFileError(
            f"{source} expired at {plan.expires.isoformat(timespec='seconds')} (made {plan.created.isoformat(timespec='seconds')})",
            next_step="run `recon plan -out FILE` again; plans are valid for 24 hours",
        )
    if binding.lineage and state.lineage != binding.lineage:
        raise PlanFileError(
            f"{source} was made against another state (lineage {binding.lineage}, the state now has {state.lineage})",
            next_step="run `recon plan -out FILE` again against this state",
        )
    if state.serial != binding.serial:
        raise PlanFileError(
            f"the state changed since {source} was made (serial {binding.serial}, now {state.serial}): "
            "it was applied already, or someone applied in between",
            next_step="run `recon plan -out FILE` again and review the new plan",
        )
    if manifest_digest != binding.manifest_digest:
        raise PlanFileError(
            f"the manifests changed since {source} was made",
            next_step="run `recon plan -out FILE` again so the plan matches the manifests",
        )
    if plan.one_way and not allow_one_way:
        raise OneWayNotAllowedError(
            "the plan holds one-way changes that cannot be undone: "
            + "; ".join(f"{c.address}: {c.safety_reason or c.reason}" for c in plan.one_way),
            next_step="review them, then apply with --allow-one-way",
        )


def _describe(error: Exception) -> str:
    if isinstance(error, ReconError):
        return error.message
    return f"{type(error).__name__}: {error}"


async def _execute(change: ResourceChange, provider: Provider | None, session: StateSession) -> None:
    address, kind, name = change.address, change.kind, change.name
    if change.action is Action.FORGET:
        session.removed(address)
        return
    if change.action is Action.NOOP:  # adoption: record what exists
        session.succeeded(ResourceState(kind, name, change.id, dict(change.after or {}), list(change.depends_on)))
        return
    assert provider is not None
    recorded = session.state.resources.get(change.moved_from or address)
    ref = ResourceRef(kind, name, change.id, recorded.attributes if recorded else None)
    session.intent(kind, name, change.action.value, change.id)
    if change.action is Action.DELETE:
        await provider.delete(ref)
        session.removed(address)
        return
    if change.action is Action.REPLACE:
        await provider.delete(ref)
        observed = await provider.create(name, dict(change.after or {}))
    elif change.action is Action.CREATE:
        observed = await provider.create(name, dict(change.after or {}))
    else:
        observed = await provider.update(ref, dict(change.after or {}))
    session.succeeded(ResourceState(kind, name, observed.id, dict(change.after or {}), list(change.depends_on)))
    if change.moved_from and change.moved_from != address:
        session.removed(change.moved_from)


class PlanOutdatedError(PlanFileError):
    """Planning again now gives a different result than the plan being applied: the live
    estate moved since it was made, or the file was forged. Nothing is applied."""


def _signature(change: ResourceChange) -> tuple[object, ...]:
    return (
        change.action,
        change.safety,
        change.adopt,
        change.after,
        change.id if change.action is not Action.CREATE else None,
    )


def ensure_same_plan(plan: Plan, fresh: Plan, *, source: str = "the plan") -> None:
    """Refuse unless `fresh` (planned again just now, under the lock, from the manifests,
    the rule packs as of today, the state and the live estate) would do exactly what `plan`
    says. This is what makes a saved plan safe to apply hours later: its diffs, safety
    classes and findings are re-derived, never taken on trust from the file."""
    if fresh.blocked:
        raise _blocked(fresh, f"planned again now, {source} would be blocked")
    saved = {c.address: c for c in plan.changes if c.changes_something}
    now = {c.address: c for c in fresh.changes if c.changes_something}
    differences = []
    for address in sorted(saved.keys() | now.keys()):
        old, new = saved.get(address), now.get(address)
        if old is None and new is not None:
            differences.append(f"{address} now needs {new.action.value}, which {source} does not do")
        elif new is None and old is not None:
            differences.append(f"{address}: {source} would {old.action.value} it, but nothing is needed now")
        elif old is not None and new is not None and _signature(old) != _signature(new):
            differences.append(
                f"{address}: {source} says {old.action.value} ({old.safety.value}), "
                f"planning now says {new.action.value} ({new.safety.value})"
                + (f" with changed {', '.join(a.dotted for a in new.attributes[:5])}" if new.attributes else "")
            )
    if differences:
        raise PlanOutdatedError(
            f"the live estate changed since {source} was made: " + "; ".join(differences[:10]),
            next_step="run `recon plan` again and review the new plan; nothing was changed",
        )


async def replan_and_check(
    plan: Plan,
    estate: Estate,
    evaluation: Evaluation,
    state: State,
    providers: ProviderSet,
    *,
    manifest_digest: str,
    now: dt.datetime,
    source: str = "the plan",
) -> None:
    """Plan again with the options `plan` was made with and `ensure_same_plan`."""
    options = PlanOptions(
        target=plan.binding.target, prune=plan.options.get("prune", False), forget=plan.options.get("forget", False)
    )
    fresh = await make_plan(estate, evaluation, state, providers, options, manifest_digest=manifest_digest, now=now)
    ensure_same_plan(plan, fresh, source=source)


async def apply_plan(
    plan: Plan,
    providers: ProviderSet,
    session: StateSession,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    on_event: EventSink | None = None,
) -> ApplyResult:
    """Carry out every changing entry of `plan`. Callers gate it with `check_applicable`
    and `replan_and_check` under the same state lock (the CLI and the tests do)."""
    result = ApplyResult()
    todo = {c.address: c for c in plan.changes if c.changes_something}
    emit = on_event or (lambda event: None)

    async def work(address: str) -> bool:
        change = todo[address]
        emit(ApplyEvent(address, change.action, "start"))
        started = time.perf_counter()
        try:
            await _execute(change, providers.get(change.kind), session)
        except Exception as error:  # a provider failure of any sort fails this resource only
            message = _describe(error)
            if address in session.state.resources:
                session.failed(address, message)
            outcome = ResourceOutcome(address, change.action, Outcome.FAILED, message, time.perf_counter() - started)
            result.outcomes.append(outcome)
            emit(ApplyEvent(address, change.action, "done", Outcome.FAILED, message))
            return False
        result.outcomes.append(
            ResourceOutcome(address, change.action, Outcome.SUCCEEDED, "", time.perf_counter() - started)
        )
        emit(ApplyEvent(address, change.action, "done", Outcome.SUCCEEDED))
        return True

    def skipped(address: str, failed: str) -> None:
        change = todo[address]
        message = f"not attempted: it must follow {failed}, which failed"
        result.outcomes.append(ResourceOutcome(address, change.action, Outcome.SKIPPED, message))
        emit(ApplyEvent(address, change.action, "done", Outcome.SKIPPED, message))

    with paused_gc():  # bounded by the plan's size; see reconciler.gcpause
        nodes = [Node(c.address, c.action, (*c.depends_on, *c.previous_depends_on)) for c in todo.values()]
        await run_graph(nodes, work, parallelism=parallelism, on_skip=skipped)
    result.serial = session.state.serial
    return result


async def apply_checked(
    plan: Plan,
    ws: Workspace,
    session: StateSession,
    providers: ProviderSet,
    *,
    now: dt.datetime,
    allow_one_way: bool,
    recheck: bool = True,
    parallelism: int = DEFAULT_PARALLELISM,
    on_event: EventSink | None = None,
    source: str = "the plan",
) -> ApplyResult:
    """The one way to apply: `check_applicable`, then (unless the plan was made under this
    same lock a moment ago) `replan_and_check`, then `apply_plan`. The CLI, the tests and
    the benchmark all call this, so none of them can skip a gate."""
    check_applicable(
        plan,
        session.state,
        manifest_digest=ws.manifest_digest,
        target=ws.target,
        now=now,
        allow_one_way=allow_one_way,
        source=source,
    )
    if recheck:
        await replan_and_check(
            plan,
            ws.estate,
            ws.evaluation,
            session.state,
            providers,
            manifest_digest=ws.manifest_digest,
            now=now,
            source=source,
        )
    return await apply_plan(plan, providers, session, parallelism=parallelism, on_event=on_event)
