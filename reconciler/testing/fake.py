"""The fake provider: a faithful, in-process implementation of the Provider protocol.

`FakeProvider(kind, store)` reads and writes one kind in a `FakeStore`, with the same
contract a real provider has (bulk observe, idempotent create and delete, update that
fails on a missing id, pure normalise and classify). Knobs for tests and benchmarks:
`latency` (an `asyncio.sleep` per call; 0 never sleeps), `faults` (a shared `FaultPlan`
that fails calls or simulates a crash), `classifier` and `normaliser` overrides.

`fake_providers(store)` builds the ProviderSet of every manageable kind: every registered
kind except the policy-only `Waiver`.

Every provider call is counted in `store.calls` under (operation, kind): "list" (one per
`observe_all` with at least one ref), "discover", "audit" (one per `attribute` with refs), "create", "update", "delete", "aclose".
A call is counted once it reaches the platform: after a "before" crash point, before an
injected failure.

Called by: engine tests, the engine benchmark, the CLI's sandbox target.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable, Mapping, Sequence

from reconciler.manifest.kinds import KINDS
from reconciler.providers.base import (
    Attributes,
    AttributeSchema,
    Attribution,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    ProviderError,
    ProviderSet,
    ResourceRef,
)
from reconciler.testing.faults import FaultPlan
from reconciler.testing.rules import FAKE_SCHEMAS, Classifier, default_classifier
from reconciler.testing.store import FakeStore, StoredObject

Normaliser = Callable[[Attributes], Attributes]

POLICY_ONLY_KINDS = frozenset({"Waiver"})
"""Kinds that exist only in manifests (read by the policy engine); no platform holds them."""

DEFAULT_ACTOR = "recon"


def manageable_kinds() -> list[str]:
    """Every registered kind a provider manages (all but POLICY_ONLY_KINDS), in registry order."""
    return [kind for kind in KINDS if kind not in POLICY_ONLY_KINDS]


def deep_copy_normaliser(attributes: Attributes) -> Attributes:
    """The fake's default normalisation: a deep copy, nothing canonicalised."""
    return copy.deepcopy(attributes)


class FakeProvider:
    """A Provider for `kind` backed by `store`. See the module docstring.

    `schema` defaults to FAKE_SCHEMAS[kind] (an empty schema for kinds not listed).
    `actor` is recorded as `changed_by` on every object this provider writes.
    """

    def __init__(
        self,
        kind: str,
        store: FakeStore,
        *,
        schema: AttributeSchema | None = None,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        classifier: Classifier | None = None,
        normaliser: Normaliser | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be 0 or more seconds, not {latency}")
        self.kind = kind
        self.store = store
        self.schema = schema if schema is not None else FAKE_SCHEMAS.get(kind, AttributeSchema())
        self.latency = latency
        self.faults = faults
        self.actor = actor
        self._classifier = classifier or default_classifier
        self._normaliser = normaliser or deep_copy_normaliser
        self.closed = False

    def __repr__(self) -> str:
        return f"FakeProvider({self.kind!r})"

    async def _begin(self, operation: str, target: str) -> bool:
        """Latency, then (without awaiting again) crash check, call count, injected fault.
        Returns True when the call must crash after its change (see FaultPlan)."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.closed:
            raise ProviderError(f"{self.kind} provider used after aclose()", next_step="this is a bug in the caller")
        crash_after_change = self.faults.start(operation, target) if self.faults is not None else False
        self.store.calls[(operation, self.kind)] += 1
        if self.faults is not None:
            self.faults.inject(operation, target, crash_after_change)
        return crash_after_change

    def _finish(self, crash_after_change: bool, operation: str, target: str) -> None:
        if crash_after_change and self.faults is not None:
            self.faults.crash_now(f"after {operation} {target} reached the platform")

    def _observed(self, stored: StoredObject) -> Observed:
        return Observed(
            kind=self.kind,
            name=stored.name,
            id=stored.id,
            attributes=self.normalise(stored.attributes),
            changed_by=stored.changed_by,
        )

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """The live objects for `refs`, keyed by each ref's address; absent ones left out.

        One "list" call per invocation, however many refs (none when `refs` is empty).
        A ref with an id is found by id only (an object recreated by hand under the same
        name has a new id and is not it); a ref without an id is found by name. The
        Observed carries the platform's name for the object. Never modifies the store."""
        if not refs:
            return {}
        await self._begin("list", self.kind)
        objects = self.store.list_objects(self.kind)
        by_id = {obj.id: obj for obj in objects}
        by_name = {obj.name: obj for obj in objects}
        found: dict[str, Observed] = {}
        for ref in refs:
            if ref.kind != self.kind:
                raise ProviderError(f"the {self.kind} provider was asked to observe {ref.address}")
            stored = by_id.get(ref.id) if ref.id is not None else by_name.get(ref.name)
            if stored is not None:
                found[ref.address] = self._observed(stored)
        return found

    async def discover(self) -> list[Observed]:
        """Every live object of this kind, sorted by name. One "discover" call; read-only."""
        await self._begin("discover", self.kind)
        return [self._observed(obj) for obj in self.store.list_objects(self.kind)]

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """`desired` unchanged: the fake stores attributes in manifest shape. No call."""
        return {name: copy.deepcopy(attributes) for name, attributes in desired.items()}

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        """Who last wrote each object in the store (`changed_by`), by address. One
        "audit" call when `refs` is not empty; objects never attributed are left out."""
        if not refs:
            return {}
        await self._begin("audit", self.kind)
        by_id = {obj.id: obj for obj in self.store.list_objects(self.kind)}
        found: dict[str, Attribution] = {}
        for ref in refs:
            stored = by_id.get(ref.id) if ref.id is not None else None
            if stored is not None and stored.changed_by:
                found[ref.address] = Attribution(stored.changed_by)
        return found

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """Create `name` with `attributes` and return it as observed. Idempotent: when an
        object named `name` exists it is updated to `attributes` (keeping its id) and
        returned; there is never a second object with one name."""
        address = f"{self.kind}/{name}"
        crash = await self._begin("create", address)
        stored = self.store.create_object(self.kind, name, attributes, changed_by=self.actor)
        self._finish(crash, "create", address)
        return self._observed(stored)

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """Replace the attributes of the object with `ref.id` by `attributes` (the full
        desired attributes) and return it as observed. Idempotent. ProviderError when
        `ref` has no id (not counted: a caller bug) or no object has that id (the store is
        then unchanged)."""
        if ref.id is None:
            raise ProviderError(f"cannot update {ref.address}: no platform id", next_step="this is a bug in the caller")
        crash = await self._begin("update", ref.address)
        stored = self.store.update_object(self.kind, ref.id, attributes, changed_by=self.actor)
        if stored is None:
            self._finish(crash, "update", ref.address)
            raise ProviderError(
                f"cannot update {ref.address}: no {self.kind} with id {ref.id} exists",
                next_step="run `recon plan` again; the object was deleted outside recon",
            )
        self._finish(crash, "update", ref.address)
        return self._observed(stored)

    async def delete(self, ref: ResourceRef) -> None:
        """Delete the object with `ref.id`. Idempotent: already gone is success.
        ProviderError when `ref` has no id (not counted: a caller bug)."""
        if ref.id is None:
            raise ProviderError(f"cannot delete {ref.address}: no platform id", next_step="this is a bug in the caller")
        crash = await self._begin("delete", ref.address)
        self.store.delete_object(self.kind, ref.id)
        self._finish(crash, "delete", ref.address)

    def normalise(self, attributes: Attributes) -> Attributes:
        """The normaliser given to the constructor, else a deep copy. Pure."""
        return self._normaliser(attributes)

    def classify(self, change: ProposedChange) -> Classification:
        """The classifier given to the constructor, else `default_classifier`. Pure."""
        return self._classifier(change)

    async def aclose(self) -> None:
        """Mark the provider closed (later calls raise ProviderError). Safe to call twice;
        counted as ("aclose", kind) each time; never crashes, even after a simulated crash."""
        self.store.calls[("aclose", self.kind)] += 1
        self.closed = True


def fake_providers(
    store: FakeStore,
    kinds: Iterable[str] | None = None,
    *,
    schemas: Mapping[str, AttributeSchema] | None = None,
    latency: float = 0.0,
    faults: FaultPlan | None = None,
    classifier: Classifier | None = None,
    normaliser: Normaliser | None = None,
    actor: str = DEFAULT_ACTOR,
) -> ProviderSet:
    """A ProviderSet with one FakeProvider per kind, all sharing `store` and `faults`.

    `kinds` defaults to every manageable kind. A policy-only kind (Waiver) or an
    unregistered kind is a ValueError. `schemas` overrides FAKE_SCHEMAS per kind; the other
    keyword arguments are passed to every FakeProvider. Creates no objects."""
    chosen = manageable_kinds() if kinds is None else list(kinds)
    for kind in chosen:
        if kind in POLICY_ONLY_KINDS:
            raise ValueError(f"{kind} is policy-only: no platform holds it, so it has no provider")
        if kind not in KINDS:
            raise ValueError(f"{kind} is not a registered kind; known: {', '.join(manageable_kinds())}")
    overrides = schemas or {}
    return ProviderSet(
        {
            kind: FakeProvider(
                kind,
                store,
                schema=overrides.get(kind),
                latency=latency,
                faults=faults,
                classifier=classifier,
                normaliser=normaliser,
                actor=actor,
            )
            for kind in chosen
        }
    )
