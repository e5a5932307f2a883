"""The results of `recon apply` and `recon drift` as data, for the renderers and the CLI.

Called by: engine.apply (ApplyResult), engine.drift (DriftReport), reconciler.render, CLI.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from reconciler.providers.base import Action, AttributeChange


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not attempted because something it depends on failed (or the run was interrupted)."""


@dataclass(frozen=True, slots=True)
class ResourceOutcome:
    address: str
    action: Action
    outcome: Outcome
    message: str = ""
    seconds: float = 0.0


@dataclass(slots=True)
class ApplyResult:
    """What one apply did, resource by resource, in completion order."""

    outcomes: list[ResourceOutcome] = field(default_factory=list)
    serial: int = 0
    """The state serial after the apply."""

    def of(self, outcome: Outcome) -> list[ResourceOutcome]:
        return [o for o in self.outcomes if o.outcome is outcome]

    @property
    def ok(self) -> bool:
        return not self.of(Outcome.FAILED) and not self.of(Outcome.SKIPPED)

    def counts(self) -> dict[str, int]:
        return {o.value: len(self.of(o)) for o in Outcome}


class DriftSide(enum.StrEnum):
    """Which side moved away from what recon last applied."""

    LIVE = "live"
    """Changed on the platform, outside recon: drift."""
    LIVE_DELETED = "live-deleted"
    """Deleted on the platform, outside recon: drift."""
    MANIFESTS = "manifests"
    """The manifests changed and were not applied yet: a pending change, not drift."""
    BOTH = "both"
    """Changed on the platform and in the manifests."""
    UNMANAGED = "unmanaged"
    """Declared in the manifests, never applied: a pending create, not drift."""


DRIFT_SIDES = frozenset({DriftSide.LIVE, DriftSide.LIVE_DELETED, DriftSide.BOTH})


@dataclass(frozen=True, slots=True)
class DriftItem:
    address: str
    kind: str
    name: str
    side: DriftSide
    live_changes: tuple[AttributeChange, ...] = ()
    """applied (before) → live (after): what changed on the platform."""
    manifest_changes: tuple[AttributeChange, ...] = ()
    """applied (before) → desired (after): what changed in the manifests."""
    changed_by: str | None = None
    """Who changed it on the platform, when the platform's audit trail says so."""
    declared_at: str | None = None
    changed_at: str | None = None
    """When (ISO-8601 UTC), from the same audit trail."""
    changed_via: str | None = None
    """Through which client or tool (e.g. admin-console), from the same audit trail."""

    @property
    def is_drift(self) -> bool:
        return self.side in DRIFT_SIDES


@dataclass(slots=True)
class DriftReport:
    target: str
    checked_at: dt.datetime
    resources_checked: int
    lineage: str
    serial: int
    items: list[DriftItem] = field(default_factory=list)

    @property
    def drifted(self) -> list[DriftItem]:
        return [i for i in self.items if i.is_drift]

    @property
    def pending(self) -> list[DriftItem]:
        return [i for i in self.items if not i.is_drift]

    @property
    def has_drift(self) -> bool:
        return bool(self.drifted)
