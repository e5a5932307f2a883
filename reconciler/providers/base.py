"""The Provider protocol: the one interface between the engine and a live platform, and the
data types that cross it. Nothing here imports anything above `reconciler.providers`.

Each manageable kind has one provider per target. Providers are async, idempotent and
honest about what they did:

- `observe_all` reads many live objects at once (list calls, never one GET per resource)
  and returns normalised attributes in manifest shape. It never modifies anything.
- `create`, `update`, `delete` change one object; each tolerates "already exists" /
  "not found" so a retried or resumed apply converges instead of duplicating.
- `classify` says whether a proposed change is reversible, one-way or forbidden. It is pure.

The engine computes every diff; a provider never decides *what* changed, only how to read
and write an object and how dangerous a change is. Attributes are JSON values (dict, list,
str, int, float, bool, None) in the manifest's own shape (`spec` of the kind, by alias).

Called by: reconciler.engine (plan, apply, drift, import, export), reconciler.testing
(the fake provider), concrete providers under reconciler.providers.*.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from reconciler.errors import ReconError

Attributes = dict[str, Any]
"""A resource's attributes in manifest shape: JSON values only."""

AttributePath = tuple[str | int, ...]
"""A path into Attributes, e.g. ("objectLock", "mode") or ("members", 0)."""

PathPattern = tuple[str, ...]
"""A path with "*" standing for any list index or map key, e.g. ("collectors", "*", "traders")."""


class Action(enum.StrEnum):
    """What a plan does to one resource. Closed: the engine, renderers and the plan file
    format handle exactly these."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    """Delete and create again: an attribute the platform cannot change in place changed."""
    DELETE = "delete"
    FORGET = "forget"
    """Remove from recon's state only; the live object is left untouched (--forget)."""
    NOOP = "no-op"


class Safety(enum.StrEnum):
    """How dangerous a change is, as judged by the provider that would make it."""

    REVERSIBLE = "reversible"
    """Can be undone by another apply."""
    ONE_WAY = "one-way"
    """Cannot be undone (enabling Object Lock, lengthening COMPLIANCE retention); apply
    needs --allow-one-way."""
    FORBIDDEN = "forbidden"
    """Must never happen (shortening COMPLIANCE retention, deleting a locked archive);
    the plan is blocked and the change never reaches a provider."""


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """Which object: kind and recon name, plus the platform id once known (from state).

    `recorded` is what recon last applied to it (from state), for platforms where the
    object cannot be read back whole (a legal hold is a set of protected conversations and
    no platform object): a provider may use it to know *what to look at*, never as the
    live value of anything the platform holds."""

    kind: str
    name: str
    id: str | None = None
    recorded: Attributes | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Observed:
    """One live object as a provider sees it: its platform id and normalised attributes.

    `name` is the recon name the object maps to (its natural key on the platform).
    `changed_by` is who last changed it, when the platform's audit trail says so.
    """

    kind: str
    name: str
    id: str
    attributes: Attributes
    changed_by: str | None = None

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(self.kind, self.name, self.id)


@dataclass(frozen=True, slots=True)
class AttributeChange:
    """One changed attribute: where, and the value before and after (None when absent)."""

    path: AttributePath
    before: Any
    after: Any

    @property
    def dotted(self) -> str:
        """The path as people write it: objectLock.defaultRetention, members[2]."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(root)"


@dataclass(frozen=True, slots=True)
class ProposedChange:
    """What the engine wants a provider to judge: one resource's action and its diff."""

    kind: str
    name: str
    action: Action
    before: Attributes | None
    after: Attributes | None
    attributes: tuple[AttributeChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Classification:
    safety: Safety
    reason: str = ""


SEVERITY = {Safety.REVERSIBLE: 0, Safety.ONE_WAY: 1, Safety.FORBIDDEN: 2}


def strongest(found: Sequence[tuple[Safety, str]]) -> Classification:
    """The most severe of `found` (rule outcomes), its reasons joined with "; ";
    reversible when nothing was found."""
    if not found:
        return Classification(Safety.REVERSIBLE)
    worst = max((safety for safety, _ in found), key=SEVERITY.__getitem__)
    return Classification(worst, "; ".join(reason for safety, reason in found if safety is worst))


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who last changed a live object, and when, as the platform's audit trail says."""

    by: str | None
    at: str | None = None
    """ISO-8601 UTC time of the change."""
    via: str | None = None
    """The client or tool the change came through (e.g. admin-console), when known."""


@dataclass(frozen=True, slots=True)
class ExpandContext:
    """What `Provider.expand` may read besides the platform.

    `estate`: every declared resource's spec (manifest shape, by alias), by kind then name,
    including kinds this target has no provider for (a RetentionPolicy folded into a
    Genesys media retention policy). `recorded`: what recon last applied for this kind, by
    name (from state)."""

    estate: Mapping[str, Mapping[str, Attributes]]
    recorded: Mapping[str, Attributes]


@dataclass(frozen=True, slots=True)
class AttributeSchema:
    """How the engine must read a kind's attributes so that plans carry no noise.

    `set_paths`: lists the platform treats as sets (order and duplicates do not matter).
    `ignored_paths`: attributes never compared (platform-owned ids, dates, selfUri if a
    provider lets them through; also write-only values the platform cannot read back).
    `replace_paths`: attributes the platform cannot change in place; changing one plans a
    REPLACE.
    """

    set_paths: frozenset[PathPattern] = frozenset()
    ignored_paths: frozenset[PathPattern] = frozenset()
    replace_paths: frozenset[PathPattern] = frozenset()
    renamable: bool = False
    """The platform can rename an object in place (`metadata.renamedFrom` then plans an
    UPDATE); otherwise a rename plans a REPLACE."""
    exportable: bool = True
    """Observed attributes are a valid manifest spec, so `recon export` can write them.
    False when the provider's attributes are the platform's view (a Genesys queue does not
    say whether it is regulated): export then names the kind instead of writing drafts
    that would not validate."""
    intent_paths: frozenset[tuple[str, ...]] = frozenset()
    """Instructions to recon that the platform does not hold (an ArchiveBucket's
    `metadataExport`, `encryption.createKey`): observe echoes what was asked, and `recon
    export` takes them from state for the objects recon manages (exact paths, no "*")."""


def path_matches(path: AttributePath, pattern: PathPattern) -> bool:
    """True when `path` is `pattern` ("*" matches any one key or index)."""
    if len(path) != len(pattern):
        return False
    return all(want == "*" or str(have) == want for have, want in zip(path, pattern, strict=True))


def path_under(path: AttributePath, patterns: frozenset[PathPattern]) -> bool:
    """True when `path` is, or lies below, one of `patterns`."""
    return any(path_matches(path[: len(pattern)], pattern) for pattern in patterns if len(pattern) <= len(path))


class ProviderError(ReconError):
    """A provider could not read or change the platform (network, auth, refusal).

    `retryable` says whether trying again later can succeed (throttling, timeouts)."""

    def __init__(self, message: str, *, next_step: str = "", retryable: bool = False) -> None:
        super().__init__(message, next_step=next_step)
        self.retryable = retryable


@runtime_checkable
class Provider(Protocol):
    """One kind's bridge to its platform. See the module docstring for the shared rules."""

    kind: str
    schema: AttributeSchema

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """Read the live objects for `refs`, keyed by address; absent objects are left out.

        A ref with an id is looked up by id; one without (not yet in state, or an apply
        that crashed before recording the id) is looked up by its natural key (name), which
        is how a resumed apply finds an object it created but never recorded.
        Must read in bulk (list endpoints, paging) and must not modify anything.
        """
        ...

    async def discover(self) -> list[Observed]:
        """Every live object of this kind (for `recon export`). Read-only."""
        ...

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """The desired attributes of this kind's declared resources (`desired`: spec by
        name, manifest shape), completed with what this platform's representation needs
        from elsewhere: a referenced resource's attributes (the retention days a Genesys
        policy carries), or facts read from the platform (the conversations a legal hold's
        scope covers today). Returns every name it was given, in any order; `normalise` is
        applied to the result. Called once per plan, before observe. May read the platform
        (in bulk); must not modify it. Most providers return `desired` unchanged.
        """
        ...

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        """Who last changed each of `refs` (objects found drifted), by address, from the
        platform's audit trail; addresses it cannot attribute are left out. Called by
        drift only, never by plan. Read-only; a failing audit query is not an error worth
        failing drift over: return what is known."""
        ...

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """Create the object `name` with `attributes` and return it as now observed.

        Idempotent: if an object with this natural key already exists, make it match
        `attributes` and return it instead of creating a second one.
        """
        ...

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """Make the object `ref` match `attributes` (the full desired attributes, not a
        patch) and return it as now observed. Idempotent; raises ProviderError when the
        object does not exist."""
        ...

    async def delete(self, ref: ResourceRef) -> None:
        """Delete the object `ref`. Idempotent: an object already gone is success.
        May refuse (ProviderError) when the platform's own safety rules forbid it."""
        ...

    def normalise(self, attributes: Attributes) -> Attributes:
        """Canonical form of attributes (e.g. 7y and 2557d compare equal). Pure; applied
        by the engine to desired and observed attributes alike before diffing."""
        ...

    def classify(self, change: ProposedChange) -> Classification:
        """How dangerous `change` is. Pure: no I/O, no state."""
        ...

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""
        ...


ProviderFactory = Callable[[], Provider]


@dataclass(slots=True)
class ProviderSet:
    """The providers of one target, by kind. Kinds without a provider are declaration-only
    on that target (e.g. Waiver): plans never list them."""

    providers: dict[str, Provider] = field(default_factory=dict)
    pass_hooks: list[Callable[[], None]] = field(default_factory=list)
    """Called by `new_pass`: providers that share per-pass caches (an org's queue list)
    register a hook that drops them."""
    request_counter: Callable[[], int] | None = None
    """How many platform requests this set has made so far (for `--verbose`), if known."""
    request_counters: dict[str, Callable[[], int]] = field(default_factory=dict)
    """The same, per platform ("Genesys Cloud", "AWS"), for a set that spans several."""
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Shared resources (an HTTP client) closed after the providers by `aclose`."""

    def new_pass(self) -> None:
        """The engine starts a fresh read of the platform (every plan and drift): caches
        from an earlier pass must not be trusted."""
        for hook in self.pass_hooks:
            hook()

    def get(self, kind: str) -> Provider | None:
        return self.providers.get(kind)

    def merged(self, other: ProviderSet) -> ProviderSet:
        """One set serving both platforms' kinds (a target with a Genesys org and an AWS
        account): hooks and closers of both, request counts summed. A kind both serve is a
        bug in the caller (ValueError)."""
        both = sorted(set(self.providers) & set(other.providers))
        if both:
            raise ValueError(f"two providers for {', '.join(both)}")
        counters = [c for c in (self.request_counter, other.request_counter) if c is not None]
        return ProviderSet(
            {**self.providers, **other.providers},
            pass_hooks=[*self.pass_hooks, *other.pass_hooks],
            request_counter=(lambda: sum(count() for count in counters)) if counters else None,
            request_counters={**self.request_counters, **other.request_counters},
            on_close=[*self.on_close, *other.on_close],
        )

    def kinds(self) -> list[str]:
        return list(self.providers)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        for close in self.on_close:
            await close()


def identity(attributes: Mapping[str, Any]) -> Attributes:
    """The default normalisation: a shallow copy."""
    return dict(attributes)
