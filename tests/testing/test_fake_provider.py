"""The fake provider keeps the Provider protocol's contract: bulk observe, idempotent
create and delete, update that fails on a missing id, the safety table, fault injection,
crash points shared across providers, and a store that separate processes share."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reconciler.providers.base import (
    Action,
    AttributeSchema,
    Classification,
    ProposedChange,
    Provider,
    ProviderError,
    ResourceRef,
    Safety,
)
from reconciler.testing import (
    FAKE_SCHEMAS,
    FakeProvider,
    FakeStore,
    FakeStoreError,
    Fault,
    FaultPlan,
    SimulatedCrash,
    default_classifier,
    fake_providers,
    fixed_classifier,
    manageable_kinds,
)

QUEUE = {"regulated": True, "region": "eu-west-1", "clientRegion": "EU", "members": ["a@x", "b@x"]}
BUCKET = {
    "bucketName": "acme-trading-recordings-eu",
    "region": "eu-west-1",
    "objectLock": {"mode": "COMPLIANCE", "defaultRetention": "7y"},
    "readers": [],
}
HOLD = {"matter": "FCA enquiry 2026/017", "scope": {"users": ["ahmed.khan@acme.example"]}, "autoExtend": True}
T = TypeVar("T")
APPROVED = {"approvedBy": "gc@acme.example", "reason": "matter closed", "ticket": "LEGAL-42"}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def queue_provider(store: FakeStore, **options: Any) -> FakeProvider:
    return FakeProvider("Queue", store, **options)


# ----------------------------------------------------------------------------- protocol


def test_fake_provider_satisfies_the_provider_protocol() -> None:
    assert isinstance(FakeProvider("Queue", FakeStore()), Provider)


@pytest.mark.parametrize(
    ("by", "ref_id"),
    [
        pytest.param("id", True, id="ref-with-id-found-by-id"),
        pytest.param("name", False, id="ref-without-id-found-by-name"),
    ],
)
def test_observe_finds_an_object(by: str, ref_id: bool) -> None:
    store = FakeStore()
    stored = store.put("Queue", "gas", QUEUE, changed_by="jane@bank")
    provider = queue_provider(store)
    ref = ResourceRef("Queue", "gas", stored.id if ref_id else None)

    found = run(provider.observe_all([ref]))

    assert list(found) == ["Queue/gas"], by
    observed = found["Queue/gas"]
    assert (observed.id, observed.name, observed.attributes, observed.changed_by) == (
        stored.id,
        "gas",
        QUEUE,
        "jane@bank",
    )


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(ResourceRef("Queue", "gas", "queue-999999"), id="unknown-id-absent-even-if-name-exists"),
        pytest.param(ResourceRef("Queue", "power"), id="unknown-name-absent"),
    ],
)
def test_observe_leaves_out_absent_objects(ref: ResourceRef) -> None:
    store = FakeStore()
    store.put("Queue", "gas", QUEUE)
    assert run(queue_provider(store).observe_all([ref])) == {}


def test_observe_makes_one_list_call_for_many_refs_and_changes_nothing() -> None:
    store = FakeStore()
    ids = {name: store.put("Queue", name, QUEUE).id for name in ("a", "b", "c", "d")}
    before = store.snapshot()
    refs = [ResourceRef("Queue", "a", ids["a"]), ResourceRef("Queue", "b"), ResourceRef("Queue", "c", ids["c"])]
    refs += [ResourceRef("Queue", "missing")]

    found = run(queue_provider(store).observe_all(refs))
    found["Queue/a"].attributes["members"].append("mutated@x")

    assert sorted(found) == ["Queue/a", "Queue/b", "Queue/c"]
    assert store.calls[("list", "Queue")] == 1
    assert store.call_count("list") == 1
    assert store.snapshot() == before


def test_observe_with_no_refs_makes_no_call() -> None:
    store = FakeStore()
    assert run(queue_provider(store).observe_all([])) == {}
    assert store.call_count("list") == 0


def test_discover_returns_every_object_of_the_kind_only() -> None:
    store = FakeStore()
    store.put("Queue", "b", QUEUE)
    store.put("Queue", "a", QUEUE)
    store.put("LegalHold", "h", HOLD)
    found = run(queue_provider(store).discover())
    assert [o.name for o in found] == ["a", "b"]
    assert store.calls[("discover", "Queue")] == 1


# ----------------------------------------------------------------------------- mutations


def test_create_is_idempotent_by_name() -> None:
    store = FakeStore()
    provider = queue_provider(store)
    first = run(provider.create("gas", QUEUE))
    changed = {**QUEUE, "description": "second"}
    second = run(provider.create("gas", changed))

    assert second.id == first.id
    assert store.objects("Queue") == {"gas": changed}
    assert store.count() == 1
    assert store.calls[("create", "Queue")] == 2
    assert store.get("Queue", "gas") is not None
    assert store.get("Queue", "gas").changed_by == "recon"  # type: ignore[union-attr]


def test_create_assigns_distinct_ids_and_copies_its_input() -> None:
    store = FakeStore()
    provider = queue_provider(store)
    attributes = json.loads(json.dumps(QUEUE))
    a = run(provider.create("a", attributes))
    b = run(provider.create("b", attributes))
    attributes["members"].append("late@x")
    assert a.id != b.id
    assert store.objects("Queue")["a"] == QUEUE


def test_update_changes_the_object_with_the_id() -> None:
    store = FakeStore()
    stored = store.put("Queue", "gas", QUEUE, changed_by="jane@bank")
    observed = run(queue_provider(store).update(ResourceRef("Queue", "gas", stored.id), {**QUEUE, "members": []}))
    assert observed.attributes["members"] == []
    assert observed.changed_by == "recon"
    assert store.objects("Queue")["gas"]["members"] == []


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(ResourceRef("Queue", "gas", "queue-999999"), id="unknown-id"),
        pytest.param(ResourceRef("Queue", "gas"), id="no-id"),
    ],
)
def test_update_of_a_missing_object_raises_and_changes_nothing(ref: ResourceRef) -> None:
    store = FakeStore()
    store.put("Queue", "gas", QUEUE)
    with pytest.raises(ProviderError):
        run(queue_provider(store).update(ref, {**QUEUE, "members": []}))
    assert store.objects("Queue") == {"gas": QUEUE}


def test_delete_is_idempotent() -> None:
    store = FakeStore()
    stored = store.put("Queue", "gas", QUEUE)
    provider = queue_provider(store)
    ref = ResourceRef("Queue", "gas", stored.id)
    run(provider.delete(ref))
    run(provider.delete(ref))
    assert store.count("Queue") == 0
    assert store.calls[("delete", "Queue")] == 2


def test_aclose_is_safe_twice_and_later_calls_fail() -> None:
    store = FakeStore()
    provider = queue_provider(store)
    run(provider.aclose())
    run(provider.aclose())
    with pytest.raises(ProviderError, match="after aclose"):
        run(provider.discover())


def test_normalise_is_a_deep_copy_unless_overridden() -> None:
    attributes = {"scope": {"users": ["b", "a"]}}
    plain = FakeProvider("LegalHold", FakeStore())
    copied = plain.normalise(attributes)
    assert copied == attributes
    assert copied["scope"] is not attributes["scope"]

    def sort_users(value: dict[str, Any]) -> dict[str, Any]:
        return {"scope": {"users": sorted(value["scope"]["users"])}}

    custom = FakeProvider("LegalHold", FakeStore(), normaliser=sort_users)
    assert custom.normalise(attributes) == {"scope": {"users": ["a", "b"]}}


# ----------------------------------------------------------------------------- classify


def change(
    kind: str, action: Action, before: dict[str, Any] | None, after: dict[str, Any] | None, name: str = "x"
) -> ProposedChange:
    return ProposedChange(kind, name, action, before, after)


def lock(mode: str, retention: str = "7y") -> dict[str, Any]:
    return {**BUCKET, "objectLock": {"mode": mode, "defaultRetention": retention}}


UNLOCKED = {key: value for key, value in BUCKET.items() if key != "objectLock"}

CLASSIFY_CASES = [
    pytest.param(change("ArchiveBucket", Action.DELETE, BUCKET, None), Safety.FORBIDDEN, "locked archive",
                 id="bucket-delete-locked-forbidden"),
    pytest.param(change("ArchiveBucket", Action.DELETE, UNLOCKED, None), Safety.FORBIDDEN, "archive bucket",
                 id="bucket-delete-unlocked-forbidden"),
    pytest.param(change("ArchiveBucket", Action.REPLACE, BUCKET, {**BUCKET, "region": "eu-central-1"}),
                 Safety.FORBIDDEN, "replacing", id="bucket-replace-forbidden"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE"), lock("GOVERNANCE")),
                 Safety.FORBIDDEN, "weakened", id="bucket-compliance-to-governance-forbidden"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE"), UNLOCKED),
                 Safety.FORBIDDEN, "weakened", id="bucket-compliance-lock-removed-forbidden"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE", "7y"), lock("COMPLIANCE", "5y")),
                 Safety.FORBIDDEN, "shortened", id="bucket-compliance-retention-shortened-forbidden"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE", "7y"), lock("COMPLIANCE", "2556d")),
                 Safety.FORBIDDEN, "shortened", id="bucket-compliance-7y-to-2556d-is-shorter-forbidden"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE", "7y"), lock("COMPLIANCE", "junk")),
                 Safety.FORBIDDEN, "shortened", id="bucket-compliance-unreadable-retention-forbidden"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE", "7y"), lock("COMPLIANCE", "10y")),
                 Safety.ONE_WAY, "7y → 10y", id="bucket-compliance-retention-lengthened-one-way"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE", "7y"), lock("COMPLIANCE", "2557d")),
                 Safety.ONE_WAY, "2557d", id="bucket-compliance-7y-to-2557d-is-longer-one-way"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("COMPLIANCE", "2w"), lock("COMPLIANCE", "14d")),
                 Safety.REVERSIBLE, "", id="bucket-compliance-same-length-reversible"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("GOVERNANCE", "7y"), lock("GOVERNANCE", "30d")),
                 Safety.REVERSIBLE, "", id="bucket-governance-retention-shortened-reversible"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, lock("GOVERNANCE"), lock("COMPLIANCE")),
                 Safety.ONE_WAY, "cannot be left", id="bucket-governance-to-compliance-one-way"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, UNLOCKED, lock("GOVERNANCE")),
                 Safety.ONE_WAY, "turned off", id="bucket-enable-object-lock-one-way"),
    pytest.param(change("ArchiveBucket", Action.UPDATE, BUCKET, {**BUCKET, "readers": ["arn:r"]}),
                 Safety.REVERSIBLE, "", id="bucket-readers-change-reversible"),
    pytest.param(change("ArchiveBucket", Action.CREATE, None, BUCKET), Safety.REVERSIBLE, "",
                 id="bucket-create-reversible"),
    pytest.param(change("LegalHold", Action.DELETE, HOLD, None), Safety.FORBIDDEN, "without an approved release",
                 id="hold-delete-unreleased-forbidden"),
    pytest.param(change("LegalHold", Action.DELETE, {**HOLD, "release": {**APPROVED, "ticket": ""}}, None),
                 Safety.FORBIDDEN, "without an approved release", id="hold-delete-incomplete-release-forbidden"),
    pytest.param(change("LegalHold", Action.REPLACE, HOLD, HOLD), Safety.FORBIDDEN, "replacing",
                 id="hold-replace-unreleased-forbidden"),
    pytest.param(change("LegalHold", Action.DELETE, {**HOLD, "release": APPROVED}, None), Safety.REVERSIBLE, "",
                 id="hold-delete-after-approved-release-reversible"),
    pytest.param(change("LegalHold", Action.UPDATE, HOLD, {**HOLD, "release": APPROVED}), Safety.ONE_WAY,
                 "cannot be undone", id="hold-approved-release-one-way"),
    *[
        pytest.param(
            change("LegalHold", Action.UPDATE, HOLD, {**HOLD, "release": {k: v for k, v in APPROVED.items() if k != f}}),
            Safety.FORBIDDEN, f"lacks {f}", id=f"hold-release-without-{f}-forbidden",
        )
        for f in ("approvedBy", "reason", "ticket")
    ],
    pytest.param(change("LegalHold", Action.CREATE, None, {**HOLD, "release": {"reason": "x"}}), Safety.FORBIDDEN,
                 "approvedBy, ticket", id="hold-created-with-incomplete-release-forbidden"),
    pytest.param(change("LegalHold", Action.UPDATE, {**HOLD, "release": APPROVED}, HOLD), Safety.REVERSIBLE, "",
                 id="hold-release-withdrawn-reversible"),
    pytest.param(change("LegalHold", Action.UPDATE, HOLD, {**HOLD, "autoExtend": False}), Safety.REVERSIBLE, "",
                 id="hold-other-update-reversible"),
    pytest.param(change("Queue", Action.DELETE, QUEUE, None), Safety.REVERSIBLE, "", id="queue-delete-reversible"),
    pytest.param(change("RetentionPolicy", Action.UPDATE, {"retain": "7y"}, {"retain": "1d"}), Safety.REVERSIBLE,
                 "", id="retention-policy-update-reversible"),
]  # fmt: skip


@pytest.mark.parametrize(("proposed", "safety", "reason_part"), CLASSIFY_CASES)
def test_default_classifier(proposed: ProposedChange, safety: Safety, reason_part: str) -> None:
    result = default_classifier(proposed)
    assert result.safety is safety, result.reason
    assert reason_part in result.reason


def test_classifier_can_be_overridden() -> None:
    provider = FakeProvider("Queue", FakeStore(), classifier=fixed_classifier(Safety.FORBIDDEN, "forced"))
    assert provider.classify(change("Queue", Action.UPDATE, QUEUE, QUEUE)) == Classification(Safety.FORBIDDEN, "forced")
    assert (
        FakeProvider("ArchiveBucket", FakeStore()).classify(change("ArchiveBucket", Action.DELETE, BUCKET, None)).safety
        is Safety.FORBIDDEN
    )


# ----------------------------------------------------------------------------- faults


Call = Callable[[FakeProvider], Coroutine[Any, Any, object]]
FAIL_CASES: list[Any] = [
    pytest.param(("create", "Queue/a"), lambda p: p.create("a", QUEUE), id="create-by-address"),
    pytest.param(("create", "*"), lambda p: p.create("a", QUEUE), id="create-any-address"),
    pytest.param(("update", "Queue/gas"), lambda p: p.update(ResourceRef("Queue", "gas", "queue-000001"), QUEUE),
                 id="update-by-address"),
    pytest.param(("delete", "Queue/gas"), lambda p: p.delete(ResourceRef("Queue", "gas", "queue-000001")),
                 id="delete-by-address"),
    pytest.param(("list", "Queue"), lambda p: p.observe_all([ResourceRef("Queue", "gas")]), id="list-by-kind"),
    pytest.param(("discover", "Queue"), lambda p: p.discover(), id="discover-by-kind"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "call"), FAIL_CASES)
@pytest.mark.parametrize("retryable", [False, True], ids=["permanent", "retryable"])
def test_fault_plan_fails_the_named_call_without_changing_the_store(
    key: tuple[str, str], call: Call, retryable: bool
) -> None:
    store = FakeStore()
    store.put("Queue", "gas", {**QUEUE, "description": "before"})
    before = store.snapshot()
    provider = queue_provider(store, faults=FaultPlan(fail={key: Fault("injected boom", retryable=retryable)}))
    with pytest.raises(ProviderError, match="injected boom") as caught:
        run(call(provider))
    assert caught.value.retryable is retryable
    assert store.snapshot() == before


def test_fault_with_times_fails_only_the_first_calls() -> None:
    store = FakeStore()
    provider = queue_provider(store, faults=FaultPlan(fail={("create", "Queue/a"): Fault("throttled", times=2)}))
    for _ in range(2):
        with pytest.raises(ProviderError, match="throttled"):
            run(provider.create("a", QUEUE))
    run(provider.create("a", QUEUE))
    assert store.count("Queue") == 1


def test_plain_message_fault_is_not_retryable_and_other_calls_pass() -> None:
    store = FakeStore()
    provider = queue_provider(store, faults=FaultPlan(fail={("create", "Queue/a"): "quota exceeded"}))
    with pytest.raises(ProviderError) as caught:
        run(provider.create("a", QUEUE))
    assert not caught.value.retryable
    run(provider.create("b", QUEUE))
    assert list(store.objects("Queue")) == ["b"]


# ----------------------------------------------------------------------------- crashes


async def create_everywhere(providers: dict[str, FakeProvider]) -> None:
    """Six mutating calls alternating between two providers that share one FaultPlan."""
    await providers["Queue"].create("q1", QUEUE)
    await providers["LegalHold"].create("h1", HOLD)
    await providers["Queue"].create("q2", QUEUE)
    await providers["LegalHold"].create("h2", HOLD)
    q1 = await providers["Queue"].update(ResourceRef("Queue", "q1", "queue-000001"), {**QUEUE, "members": []})
    await providers["Queue"].delete(q1.ref)


def crash_providers(store: FakeStore, plan: FaultPlan) -> dict[str, FakeProvider]:
    return {kind: FakeProvider(kind, store, faults=plan) for kind in ("Queue", "LegalHold")}


def test_fault_plan_counts_mutating_calls_across_providers() -> None:
    store, plan = FakeStore(), FaultPlan()
    run(create_everywhere(crash_providers(store, plan)))
    assert plan.mutating_calls == 6
    assert not plan.crashed


EXPECTED_OBJECTS_AFTER = [
    (0, set()),
    (1, {"Queue/q1"}),
    (2, {"Queue/q1", "LegalHold/h1"}),
    (3, {"Queue/q1", "LegalHold/h1", "Queue/q2"}),
    (4, {"Queue/q1", "LegalHold/h1", "Queue/q2", "LegalHold/h2"}),
    (5, {"Queue/q1", "LegalHold/h1", "Queue/q2", "LegalHold/h2"}),
    (6, {"LegalHold/h1", "Queue/q2", "LegalHold/h2"}),
]


def addresses(store: FakeStore) -> set[str]:
    return {f"{kind}/{name}" for kind, objects in store.snapshot().items() for name in objects}


@pytest.mark.parametrize("crash_point", ["before", "after"])
@pytest.mark.parametrize("k", range(6), ids=lambda k: f"crash-after-{k}-calls")
def test_crash_after_k_calls_for_every_k(k: int, crash_point: str) -> None:
    store = FakeStore()
    plan = FaultPlan(crash_after=k, crash_point="after" if crash_point == "after" else "before")
    providers = crash_providers(store, plan)

    with pytest.raises(SimulatedCrash):
        run(create_everywhere(providers))

    landed = k + 1 if crash_point == "after" else k  # "after": the (k+1)-th change lands, unacknowledged
    assert addresses(store) == EXPECTED_OBJECTS_AFTER[landed][1]
    assert plan.crashed
    assert plan.mutating_calls == k + 1
    with pytest.raises(SimulatedCrash, match="already crashed"):  # a dead process makes no more calls
        run(providers["LegalHold"].create("h9", HOLD))
    with pytest.raises(SimulatedCrash):
        run(providers["Queue"].discover())


def test_crash_after_leaves_an_object_a_resume_finds_by_name() -> None:
    store = FakeStore()
    plan = FaultPlan(crash_after=0, crash_point="after")
    with pytest.raises(SimulatedCrash):
        run(queue_provider(store, faults=plan).create("gas", QUEUE))
    resumed = queue_provider(store)
    found = run(resumed.observe_all([ResourceRef("Queue", "gas")]))
    assert found["Queue/gas"].id == store.ids("Queue")["gas"]
    run(resumed.create("gas", QUEUE))
    assert store.count("Queue") == 1


def test_crash_before_is_not_counted_as_a_platform_call() -> None:
    store = FakeStore()
    with pytest.raises(SimulatedCrash):
        run(queue_provider(store, faults=FaultPlan(crash_after=0)).create("gas", QUEUE))
    assert store.call_count("create") == 0


def test_crash_is_a_base_exception_that_except_exception_cannot_swallow() -> None:
    assert not issubclass(SimulatedCrash, Exception)

    async def engine_like() -> str:
        try:
            await queue_provider(FakeStore(), faults=FaultPlan(crash_after=0)).create("gas", QUEUE)
        except Exception:
            return "swallowed"
        return "returned"

    with pytest.raises(SimulatedCrash):
        run(engine_like())


def test_on_crash_hook_runs_and_the_call_still_dies() -> None:
    seen: list[str] = []
    plan = FaultPlan(crash_after=1, on_crash=lambda: seen.append("crash"))
    provider = queue_provider(FakeStore(), faults=plan)
    run(provider.create("a", QUEUE))
    with pytest.raises(SimulatedCrash):
        run(provider.create("b", QUEUE))
    assert seen == ["crash"]


def test_crash_under_gather_lands_no_change_after_the_crash() -> None:
    store = FakeStore()
    plan = FaultPlan(crash_after=3)
    provider = queue_provider(store, faults=plan, latency=0.001)

    async def create_many() -> None:
        await asyncio.gather(*(provider.create(f"q{i}", QUEUE) for i in range(10)))

    with pytest.raises(SimulatedCrash):
        run(create_many())
    assert store.count("Queue") == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"crash_after": -1}, "crash_after", id="negative-crash-after"),
        pytest.param({"crash_point": "during"}, "crash_point", id="unknown-crash-point"),
    ],
)
def test_fault_plan_rejects_bad_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan(**options)


# ----------------------------------------------------------------------------- latency


def test_latency_zero_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(delay: float) -> None:
        raise AssertionError(f"slept {delay}")

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    store = FakeStore()
    provider = queue_provider(store)
    created = run(provider.create("gas", QUEUE))
    run(provider.update(created.ref, QUEUE))
    run(provider.observe_all([created.ref]))
    run(provider.discover())
    run(provider.delete(created.ref))


def test_latency_sleeps_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(asyncio, "sleep", record)
    provider = queue_provider(FakeStore(), latency=0.25)
    created = run(provider.create("gas", QUEUE))
    run(provider.observe_all([created.ref, ResourceRef("Queue", "other")]))
    assert delays == [0.25, 0.25]


def test_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="latency"):
        queue_provider(FakeStore(), latency=-1)


# ----------------------------------------------------------------------------- persistence


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "estate" / "fake.json"
    first, second = FakeStore.open(path), FakeStore.open(path)
    assert not path.exists()

    created = run(queue_provider(first).create("gas", QUEUE))
    assert second.objects("Queue") == {"gas": QUEUE}

    second.put("Queue", "gas", {**QUEUE, "members": ["jane@bank"]}, changed_by="jane@bank")
    observed = run(queue_provider(first).observe_all([created.ref]))["Queue/gas"]
    assert (observed.attributes["members"], observed.changed_by) == (["jane@bank"], "jane@bank")

    other = run(queue_provider(second).create("power", QUEUE))
    assert other.id != created.id
    assert FakeStore.open(path).ids("Queue") == {"gas": created.id, "power": other.id}
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.json"]  # no temporary files left


def test_a_hand_edited_file_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "fake.json"
    store = FakeStore.open(path)
    store.put("Queue", "gas", QUEUE)
    data = json.loads(path.read_text())
    data["objects"]["Queue"]["gas"]["attributes"]["description"] = "edited by hand"
    data["objects"]["Queue"]["gas"]["changedBy"] = "jane@bank"
    path.write_text(json.dumps(data, indent=2) + "\n")
    assert store.get("Queue", "gas") is not None
    assert store.objects("Queue")["gas"]["description"] == "edited by hand"
    assert store.get("Queue", "gas").changed_by == "jane@bank"  # type: ignore[union-attr]


def test_ids_stay_unique_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "fake.json"
    first = FakeStore.open(path).put("Queue", "a", QUEUE)
    FakeStore.open(path).remove("Queue", "a")
    second = FakeStore.open(path).put("Queue", "b", QUEUE)
    assert first.id != second.id


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"objects": {"Queue": {"gas": {"attributes": {}}}}}', id="object-without-id"),
    ],
)
def test_a_broken_file_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fake.json"
    path.write_text(text)
    with pytest.raises(FakeStoreError, match=r"fake\.json"):
        FakeStore.open(path)


def test_in_memory_store_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FakeStore()
    store.put("Queue", "gas", QUEUE)
    assert store.remove("Queue", "gas")
    assert not store.remove("Queue", "gas")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- provider set


def test_fake_providers_covers_every_manageable_kind_but_waiver() -> None:
    providers = fake_providers(FakeStore())
    assert "Waiver" not in providers.kinds()
    assert set(providers.kinds()) == set(manageable_kinds())
    assert set(providers.kinds()) == set(FAKE_SCHEMAS)
    bucket = providers.get("ArchiveBucket")
    assert bucket is not None
    assert ("bucketName",) in bucket.schema.replace_paths


def test_fake_providers_share_store_faults_and_options() -> None:
    store, plan = FakeStore(), FaultPlan()
    custom = AttributeSchema(set_paths=frozenset({("tags",)}))
    providers = fake_providers(store, ["Queue", "LegalHold"], faults=plan, schemas={"Queue": custom})
    assert providers.kinds() == ["Queue", "LegalHold"]
    queue, hold = providers.get("Queue"), providers.get("LegalHold")
    assert queue is not None and hold is not None
    assert queue.schema == custom
    assert hold.schema == FAKE_SCHEMAS["LegalHold"]
    run(queue.create("q", QUEUE))
    run(hold.create("h", HOLD))
    assert plan.mutating_calls == 2
    assert store.count() == 2
    run(providers.aclose())
    assert store.call_count("aclose") == 2


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        pytest.param(["Waiver"], "policy-only", id="waiver-refused"),
        pytest.param(["Queues"], "not a registered kind", id="unknown-kind-refused"),
    ],
)
def test_fake_providers_refuses_kinds_without_a_platform(kinds: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fake_providers(FakeStore(), kinds)


KILL_SCRIPT = """
import asyncio, os, signal, sys
from pathlib import Path
from reconciler.testing import FakeProvider, FakeStore, FaultPlan

store = FakeStore.open(Path(sys.argv[1]))
plan = FaultPlan(crash_after=1, crash_point="after", on_crash=lambda: os.kill(os.getpid(), signal.SIGKILL))
provider = FakeProvider("Queue", store, faults=plan)

async def main() -> None:
    await provider.create("a", {})
    await provider.create("b", {})
    await provider.create("c", {})

asyncio.run(main())
"""


def test_kill_nine_recipe_leaves_the_persisted_estate_at_the_crash_point(tmp_path: Path) -> None:
    path = tmp_path / "fake.json"
    done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(path)], check=False, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert list(FakeStore.open(path).objects("Queue")) == ["a", "b"]
