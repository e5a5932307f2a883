"""A plan is data: what would change, per resource, with the reason and the safety class,
bound to the state and manifests it was computed from. This module holds the types and the
saved-plan file format (JSON, documented in docs/plan-format.md); it performs no I/O
beyond `Plan.dumps/loads`.

A saved plan carries a digest over its own content, so an edited file is refused, and a
binding (state lineage and serial, manifest digest, target, expiry) so that `recon apply
plan.json` does exactly that plan or refuses with the reason.

Called by: reconciler.engine.planner (builds plans), engine.apply (executes them),
reconciler.render (text / JSON / Markdown), the CLI (`plan -out`, `show`, `apply FILE`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from reconciler import __version__
from reconciler.errors import ReconError
from reconciler.gcpause import paused_gc
from reconciler.providers.base import Action, AttributeChange, Attributes, Safety

FORMAT_VERSION = 1
PLAN_LIFETIME = dt.timedelta(hours=24)

CHANGING_ACTIONS = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.FORGET})


class PlanFileError(ReconError):
    """A saved plan cannot be read or may not be applied (edited, stale, expired)."""


@dataclass(frozen=True, slots=True)
class PlanFinding:
    """A compliance finding, frozen into the plan (plain values, no live objects)."""

    rule_id: str
    severity: str
    resource: str
    message: str
    location: str
    field: str
    remediation: str
    waived: bool = False

    @property
    def blocks(self) -> bool:
        return self.severity == "error" and not self.waived


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One resource's planned change.

    `before` is the live (or, for forget, the recorded) attributes; `after` the desired
    ones; both normalised, both None where absent. `attributes` lists every changed path.
    `orphaned`: in state but no longer in the manifests (deleted only with --prune).
    `adopt`: exists on the platform but not in state; applying records it in state.
    `declared_at` is file:line of the manifest document, when there is one.
    `depends_on` is what the resource refers to in the manifests (recorded in state on
    apply); `previous_depends_on` what it referred to when last applied. `moved_from` is
    the address the resource was recorded under before a rename (`metadata.renamedFrom`);
    apply moves the state record. Apply orders by
    both, so a reference is dropped before the resource it pointed at is deleted.
    """

    address: str
    kind: str
    name: str
    action: Action
    safety: Safety
    reason: str
    safety_reason: str = ""
    id: str | None = None
    before: Attributes | None = None
    after: Attributes | None = None
    attributes: tuple[AttributeChange, ...] = ()
    depends_on: tuple[str, ...] = ()
    previous_depends_on: tuple[str, ...] = ()
    moved_from: str | None = None
    orphaned: bool = False
    adopt: bool = False
    declared_at: str | None = None

    @property
    def changes_something(self) -> bool:
        """True when applying this entry calls a provider or writes state."""
        return self.action in CHANGING_ACTIONS or self.adopt


@dataclass(frozen=True, slots=True)
class PlanBinding:
    """What the plan was computed against; apply refuses when any of it moved."""

    lineage: str
    serial: int
    manifest_digest: str
    target: str


@dataclass(slots=True)
class Plan:
    binding: PlanBinding
    created: dt.datetime
    expires: dt.datetime
    changes: list[ResourceChange] = field(default_factory=list)
    findings: list[PlanFinding] = field(default_factory=list)
    options: dict[str, bool] = field(default_factory=dict)
    """The flags the plan was made with: prune, forget."""
    sources: list[str] = field(default_factory=list)
    """The manifest paths given to `recon plan`, relative to the project root;
    `recon apply PLANFILE` reloads them from there."""
    root: str = ""
    """The project root's absolute path when the plan was made (one of the places apply
    looks for the project; see reconciler.cli.engine_commands)."""

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        counts["adopt"] = sum(c.adopt for c in self.changes)
        counts["orphaned"] = sum(c.orphaned for c in self.changes)
        return counts

    @property
    def has_changes(self) -> bool:
        return any(c.changes_something for c in self.changes)

    @property
    def forbidden(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.safety is Safety.FORBIDDEN and c.action is not Action.NOOP]

    @property
    def one_way(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.safety is Safety.ONE_WAY and c.action is not Action.NOOP]

    @property
    def blocking_findings(self) -> list[PlanFinding]:
        return [f for f in self.findings if f.blocks]

    @property
    def blocked(self) -> bool:
        """Forbidden changes or error-severity findings: the plan may not be applied."""
        return bool(self.forbidden or self.blocking_findings)

    # ---- the saved-plan file -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The plan as the documented JSON document, with its content digest."""
        body = _body(self)
        body["digest"] = content_digest(body)
        return body

    def dumps(self) -> str:
        """The saved-plan file: the canonical JSON of the body with the digest put first.

        One serialisation serves both the digest and the file (a 10,000-resource plan is
        ~7 MB); `recon show --json` pretty-prints it for people."""
        with paused_gc():
            text = _canonical_json(_body(self))
        return '{"digest":' + json.dumps(_digest_of(text)) + "," + text[1:] + "\n"

    @classmethod
    def loads(cls, text: str, *, source: str) -> Plan:
        """Read a saved plan, refusing files that are not plans or were edited."""
        try:
            with paused_gc():
                document = json.loads(text)
        except ValueError as error:
            raise PlanFileError(
                f"{source} is not a recon plan file: {error}", next_step="run `recon plan -out FILE` again"
            ) from None
        if not isinstance(document, dict) or document.get("format_version") != FORMAT_VERSION:
            raise PlanFileError(
                f"{source} is not a recon plan file of format version {FORMAT_VERSION}",
                next_step="run `recon plan -out FILE` with this version of recon",
            )
        claimed = document.pop("digest", None)
        if claimed != content_digest(document):
            raise PlanFileError(
                f"{source} was modified after `recon plan` wrote it (its content digest does not match)",
                next_step="never edit a plan file; run `recon plan -out FILE` again",
            )
        try:
            return _from_body(document)
        except (KeyError, TypeError, ValueError) as error:
            raise PlanFileError(
                f"{source} is not a valid recon plan file: {error}", next_step="run `recon plan -out FILE` again"
            ) from None


def _canonical_json(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest_of(canonical: str) -> str:
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def content_digest(body: dict[str, Any]) -> str:
    """sha256 over the canonical JSON (sorted keys, no spaces, UTF-8) of `body`."""
    return _digest_of(_canonical_json(body))


def _change_json(change: ResourceChange) -> dict[str, Any]:
    return {
        "address": change.address,
        "kind": change.kind,
        "name": change.name,
        "id": change.id,
        "action": change.action.value,
        "action_reason": change.reason,
        "safety": change.safety.value,
        "safety_reason": change.safety_reason,
        "orphaned": change.orphaned,
        "adopt": change.adopt,
        "depends_on": list(change.depends_on),
        "previous_depends_on": list(change.previous_depends_on),
        "moved_from": change.moved_from,
        "declared_at": change.declared_at,
        "change": {
            "before": change.before,
            "after": change.after,
            "attributes": [
                {"path": a.dotted, "segments": list(a.path), "before": a.before, "after": a.after}
                for a in change.attributes
            ],
        },
    }


def _body(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "recon_version": __version__,
        "created": plan.created.isoformat(),
        "expires": plan.expires.isoformat(),
        "binding": {
            "lineage": plan.binding.lineage,
            "serial": plan.binding.serial,
            "manifest_digest": plan.binding.manifest_digest,
            "target": plan.binding.target,
        },
        "options": dict(sorted(plan.options.items())),
        "sources": list(plan.sources),
        "root": plan.root,
        "summary": {
            "counts": plan.counts(),
            "has_changes": plan.has_changes,
            "blocked": plan.blocked,
            "forbidden": [c.address for c in plan.forbidden],
            "one_way": [c.address for c in plan.one_way],
        },
        "resource_changes": [_change_json(c) for c in plan.changes],
        "findings": [
            {
                "rule_id": f.rule_id,
                "severity": f.severity,
                "resource": f.resource,
                "message": f.message,
                "location": f.location,
                "field": f.field,
                "remediation": f.remediation,
                "waived": f.waived,
            }
            for f in plan.findings
        ],
    }


def _from_body(body: dict[str, Any]) -> Plan:
    binding = body["binding"]
    changes = []
    for item in body["resource_changes"]:
        diff = item["change"]
        changes.append(
            ResourceChange(
                address=item["address"],
                kind=item["kind"],
                name=item["name"],
                id=item["id"],
                action=Action(item["action"]),
                reason=item["action_reason"],
                safety=Safety(item["safety"]),
                safety_reason=item["safety_reason"],
                orphaned=bool(item["orphaned"]),
                adopt=bool(item["adopt"]),
                depends_on=tuple(item["depends_on"]),
                previous_depends_on=tuple(item["previous_depends_on"]),
                moved_from=item.get("moved_from"),
                declared_at=item["declared_at"],
                before=diff["before"],
                after=diff["after"],
                attributes=tuple(
                    AttributeChange(tuple(a["segments"]), a["before"], a["after"]) for a in diff["attributes"]
                ),
            )
        )
    return Plan(
        binding=PlanBinding(
            lineage=str(binding["lineage"]),
            serial=int(binding["serial"]),
            manifest_digest=str(binding["manifest_digest"]),
            target=str(binding["target"]),
        ),
        created=dt.datetime.fromisoformat(body["created"]),
        expires=dt.datetime.fromisoformat(body["expires"]),
        changes=changes,
        findings=[PlanFinding(**f) for f in body["findings"]],
        options={str(k): bool(v) for k, v in body["options"].items()},
        sources=[str(p) for p in body["sources"]],
        root=str(body["root"]),
    )
