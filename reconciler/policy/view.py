"""EstateView: the indexes every rule needs, computed once per evaluation.

Rules ask questions like "which recording policies cover this queue?" or "which archive
bucket does this policy export to?"; answering them from scratch in each rule would make
evaluation quadratic on large estates. The view answers them from dictionaries.

Called by: reconciler.policy.evaluate (builds it), rule packs (read it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconciler.manifest.kinds.archive import ArchiveBucketSpec
from reconciler.manifest.kinds.recording import QueueSpec, RecordingPolicySpec, RetentionPolicySpec
from reconciler.manifest.model import Estate, Resource

T = TypeVar("T")


@dataclass(slots=True)
class EstateView:
    estate: Estate
    today: dt.date
    queues: list[Resource] = field(default_factory=list)
    policies: dict[str, Resource] = field(default_factory=dict)
    retentions: dict[str, Resource] = field(default_factory=dict)
    buckets: dict[str, Resource] = field(default_factory=dict)
    coverage: dict[str, list[Resource]] = field(default_factory=dict)
    queues_of_policy: dict[str, list[Resource]] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, estate: Estate, today: dt.date) -> EstateView:
        view = cls(estate=estate, today=today)
        for resource in estate.resources.values():
            if resource.kind == "Queue":
                view.queues.append(resource)
            elif resource.kind == "RecordingPolicy":
                view.policies[resource.name] = resource
            elif resource.kind == "RetentionPolicy":
                view.retentions[resource.name] = resource
            elif resource.kind == "ArchiveBucket":
                view.buckets[resource.name] = resource
        queue_names = {q.name for q in view.queues}
        covering: dict[str, dict[str, Resource]] = {q.name: {} for q in view.queues}
        for queue in view.queues:
            spec = queue_spec(queue)
            if spec.recordingPolicy and spec.recordingPolicy in view.policies:
                covering[queue.name][spec.recordingPolicy] = view.policies[spec.recordingPolicy]
        for policy in view.policies.values():
            for name in policy_spec(policy).appliesTo.queues:
                if name in queue_names:
                    covering[name][policy.name] = policy
        view.coverage = {name: list(found.values()) for name, found in covering.items()}
        by_name = {q.name: q for q in view.queues}
        for queue_name, policies in view.coverage.items():
            for policy in policies:
                view.queues_of_policy.setdefault(policy.name, []).append(by_name[queue_name])
        return view

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """An index a pack builds once per evaluation and shares between its rules."""
        if key not in self._memo:
            self._memo[key] = build()
        value: T = self._memo[key]
        return value

    def org_default_retention(self) -> Resource | None:
        return next((r for r in self.retentions.values() if retention_spec(r).orgDefault), None)

    def retention_of(self, policy: Resource) -> Resource | None:
        name = policy_spec(policy).retention
        return self.retentions.get(name) if name else None

    def archive_of(self, policy: Resource) -> Resource | None:
        name = policy_spec(policy).archive
        return self.buckets.get(name) if name else None


def queue_spec(resource: Resource) -> QueueSpec:
    assert isinstance(resource.spec, QueueSpec)
    return resource.spec


def policy_spec(resource: Resource) -> RecordingPolicySpec:
    assert isinstance(resource.spec, RecordingPolicySpec)
    return resource.spec


def retention_spec(resource: Resource) -> RetentionPolicySpec:
    assert isinstance(resource.spec, RetentionPolicySpec)
    return resource.spec


def bucket_spec(resource: Resource) -> ArchiveBucketSpec:
    assert isinstance(resource.spec, ArchiveBucketSpec)
    return resource.spec
