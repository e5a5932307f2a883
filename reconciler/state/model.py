"""recon's state: what it last applied, per resource, as versioned, secret-free JSON.

    {"version": 1, "serial": 42, "lineage": "<uuid>", "resources": {ADDRESS: {...}}}

`lineage` is fixed when a state is first created; `serial` grows with every recorded event,
so a saved plan can tell whether the state moved since it was made. Each resource keeps
its platform id, the attributes recon last applied (normalised, manifest shape), what it
depended on when applied (for delete ordering) and, while a provider call is in flight or
after one failed, a `pending` intent: the next plan then looks the object up by its
natural key instead of trusting the id, so a crash never leads to a duplicate create.

Called by: reconciler.state backends (persist), reconciler.engine (reads and records).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import ReconError
from reconciler.providers.base import Attributes

STATE_VERSION = 1


class StateError(ReconError):
    """The state cannot be read or written (corrupt file, unknown version, storage error)."""


@dataclass(slots=True)
class Pending:
    """A provider call that was started and not (successfully) finished."""

    action: str
    started: str
    fence: int
    message: str = ""
    """Why it failed, when it is known to have failed; empty while in doubt."""

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "started": self.started, "fence": self.fence, "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pending:
        return cls(str(data["action"]), str(data["started"]), int(data["fence"]), str(data.get("message", "")))


@dataclass(slots=True)
class ResourceState:
    kind: str
    name: str
    id: str | None
    attributes: Attributes
    """What recon last applied (normalised). Empty for a resource only ever intended."""
    depends_on: list[str] = field(default_factory=list)
    updated: str = ""
    pending: Pending | None = None

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def applied(self) -> bool:
        """True once some apply (or import) has succeeded for this resource."""
        return bool(self.updated)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "id": self.id,
            "attributes": self.attributes,
            "depends_on": self.depends_on,
            "updated": self.updated,
            "pending": self.pending.to_json() if self.pending else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResourceState:
        pending = data.get("pending")
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            id=None if data.get("id") is None else str(data["id"]),
            attributes=dict(data.get("attributes") or {}),
            depends_on=[str(a) for a in data.get("depends_on") or []],
            updated=str(data.get("updated") or ""),
            pending=Pending.from_json(pending) if pending else None,
        )


@dataclass(slots=True)
class State:
    lineage: str
    serial: int = 0
    resources: dict[str, ResourceState] = field(default_factory=dict)
    fence: int = 0
    """The highest lock fencing token that wrote to this state."""
    version: int = STATE_VERSION

    @classmethod
    def new(cls) -> State:
        return cls(lineage=str(uuid.uuid4()))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "serial": self.serial,
            "lineage": self.lineage,
            "fence": self.fence,
            "resources": {address: r.to_json() for address, r in sorted(self.resources.items())},
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> State:
        if not isinstance(data, dict):
            raise StateError(f"{source} is not a recon state file (expected a JSON object)")
        version = data.get("version")
        if version != STATE_VERSION:
            raise StateError(
                f"{source} has state version {version!r}; this recon reads version {STATE_VERSION}",
                next_step="use the recon release that wrote it, or restore a backup",
            )
        try:
            return cls(
                lineage=str(data["lineage"]),
                serial=int(data["serial"]),
                fence=int(data.get("fence", 0)),
                resources={str(a): ResourceState.from_json(r) for a, r in (data.get("resources") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"{source} is not a valid recon state file: {error!r}") from None
