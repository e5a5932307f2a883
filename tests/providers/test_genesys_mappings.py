"""Pure mapping and safety functions of the Genesys providers: spec → attributes → wire →
attributes, read-modify-write bodies that keep unmanaged fields, and the safety tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reconciler.providers.base import Action, ProposedChange, ProviderError, Safety
from reconciler.providers.genesys.holds import ORG_PROTECTION_LIMIT, batches, classify_hold, interval
from reconciler.providers.genesys.policies import (
    attributes_from_wire,
    classify_policy,
    policy_attributes,
    wire_from_attributes,
)
from reconciler.providers.genesys.queues import SUPPRESS, classify_queue, project, queue_attributes, queue_body

RETENTION = {
    "mifid2-seven-years": {"retain": "7y", "archiveAfter": "30d", "deleteAfterRetention": True},
    "keep-forever": {"retain": "5y", "deleteAfterRetention": False},
}
QUEUES = {
    "gas": {"regulated": True, "recordingPolicy": "mifid2"},
    "power": {"regulated": True, "recordingPolicy": "mifid2"},
    "service": {"regulated": False, "recordingPolicy": "service"},
}
SPEC = {
    "regimes": ["mifid2"],
    "record": {"inbound": "always", "outbound": "flow", "internal": "always"},
    "retention": "mifid2-seven-years",
    "appliesTo": {"queues": ["carbon"]},
}


@pytest.mark.parametrize(
    ("spec_changes", "expected"),
    [
        pytest.param(
            {},
            {
                "enabled": True,
                "directions": ["INBOUND", "OUTBOUND"],
                "queues": ["carbon", "gas", "power"],
                "archiveAfterDays": 30,
                "deleteAfterDays": 2557,
            },
            id="retention-days-folded-in-and-queues-naming-the-policy-added-to-appliesTo",
        ),
        pytest.param(
            {"record": {"inbound": "always", "outbound": "never", "internal": "never"}, "enabled": False},
            {
                "enabled": False,
                "directions": ["INBOUND"],
                "queues": ["carbon", "gas", "power"],
                "archiveAfterDays": 30,
                "deleteAfterDays": 2557,
            },
            id="a-direction-never-recorded-is-not-retained-and-disabled-stays-disabled",
        ),
        pytest.param(
            {"retention": "keep-forever"},
            {"enabled": True, "directions": ["INBOUND", "OUTBOUND"], "queues": ["carbon", "gas", "power"]},
            id="deleteAfterRetention-false-means-never-deleted",
        ),
        pytest.param(
            {"retention": None},
            {"enabled": True, "directions": ["INBOUND", "OUTBOUND"], "queues": ["carbon", "gas", "power"]},
            id="no-retention-policy-no-durations",
        ),
    ],
)
def test_policy_attributes_from_the_spec(spec_changes: dict[str, Any], expected: dict[str, Any]) -> None:
    assert policy_attributes("mifid2", {**SPEC, **spec_changes}, RETENTION, QUEUES) == expected


def test_wire_round_trip_and_read_modify_write_keeps_console_fields() -> None:
    attributes = policy_attributes("mifid2", SPEC, RETENTION, QUEUES)
    ids = {"carbon": "q-3", "gas": "q-1", "power": "q-2"}
    current = {
        "id": "p-1",
        "name": "old-name",
        "selfUri": "/api/v2/recording/mediaretentionpolicies/p-1",
        "order": 4,
        "mediaPolicies": {
            "callPolicy": {
                "conditions": {"wrapupCodes": [{"id": "w-1"}]},
                "actions": {"assignEvaluations": [{"x": 1}]},
            },
            "chatPolicy": {"actions": {"retainRecording": True}},
        },
    }
    body = wire_from_attributes("mifid2", attributes, ids, current)
    assert body["name"] == "mifid2", "a rename is an update of the name"
    assert "id" not in body and "selfUri" not in body
    assert body["order"] == 4
    assert body["mediaPolicies"]["chatPolicy"] == {"actions": {"retainRecording": True}}
    assert body["mediaPolicies"]["callPolicy"]["conditions"]["wrapupCodes"] == [{"id": "w-1"}]
    assert body["mediaPolicies"]["callPolicy"]["actions"]["assignEvaluations"] == [{"x": 1}]
    duration = body["mediaPolicies"]["callPolicy"]["actions"]["retentionDuration"]
    assert duration == {
        "archiveRetention": {"days": 30, "storageMedium": "CLOUDARCHIVE"},
        "deleteRetention": {"days": 2557},
    }
    names = {v: k for k, v in ids.items()}
    assert attributes_from_wire({**body, "id": "p-1"}, names) == attributes


def test_a_queue_that_does_not_exist_is_a_clear_error() -> None:
    with pytest.raises(ProviderError, match="carbon"):
        wire_from_attributes("mifid2", {"queues": ["carbon"]}, {})


def test_an_unknown_queue_id_on_the_platform_is_shown_not_dropped() -> None:
    policy = {"mediaPolicies": {"callPolicy": {"conditions": {"forQueues": [{"id": "gone"}]}}}}
    assert attributes_from_wire(policy, {})["queues"] == ["<unknown queue gone>"]


BASE = {"enabled": True, "directions": ["INBOUND", "OUTBOUND"], "queues": ["gas", "power"], "deleteAfterDays": 2557}


@pytest.mark.parametrize(
    ("action", "after", "safety"),
    [
        pytest.param(
            Action.UPDATE, {**BASE, "deleteAfterDays": 3650}, Safety.REVERSIBLE, id="keeping-longer-is-reversible"
        ),
        pytest.param(Action.UPDATE, {**BASE, "deleteAfterDays": 1826}, Safety.ONE_WAY, id="deleting-sooner-is-one-way"),
        pytest.param(
            Action.UPDATE, {**BASE, "deleteAfterDays": None}, Safety.REVERSIBLE, id="never-deleting-is-reversible"
        ),
        pytest.param(Action.UPDATE, {**BASE, "enabled": False}, Safety.ONE_WAY, id="disabling-is-one-way"),
        pytest.param(Action.UPDATE, {**BASE, "queues": ["gas"]}, Safety.ONE_WAY, id="uncovering-a-queue-is-one-way"),
        pytest.param(
            Action.UPDATE,
            {**BASE, "queues": ["gas", "power", "x"]},
            Safety.REVERSIBLE,
            id="covering-more-is-reversible",
        ),
        pytest.param(Action.DELETE, None, Safety.ONE_WAY, id="deleting-the-policy-is-one-way"),
        pytest.param(Action.CREATE, BASE, Safety.REVERSIBLE, id="creating-is-reversible"),
    ],
)
def test_policy_safety(action: Action, after: dict[str, Any] | None, safety: Safety) -> None:
    before = None if action is Action.CREATE else BASE
    change = ProposedChange("RecordingPolicy", "p", action, before, after)
    assert classify_policy(change).safety is safety


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"regulated": True}, {SUPPRESS: False}, id="regulated-never-suppresses"),
        pytest.param({"regulated": False}, {}, id="unregulated-leaves-suppression-alone"),
        pytest.param(
            {"regulated": False, "description": "x"}, {"description": "x"}, id="description-managed-when-given"
        ),
    ],
)
def test_queue_attributes(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert queue_attributes(spec) == expected


def test_queue_body_keeps_fields_recon_does_not_manage_and_projection_reports_only_managed() -> None:
    live = {
        "id": "q-1",
        "name": "gas",
        "acwSettings": {"wrapupPrompt": "MANDATORY"},
        "skillEvaluationMethod": "BEST",
        SUPPRESS: True,
        "memberCount": 4,
        "description": "from the console",
    }
    body = queue_body("gas-renamed", {SUPPRESS: False}, live)
    assert body == {
        "name": "gas-renamed",
        "acwSettings": {"wrapupPrompt": "MANDATORY"},
        "skillEvaluationMethod": "BEST",
        SUPPRESS: False,
        "description": "from the console",
    }
    assert project(live, {SUPPRESS}) == {SUPPRESS: True}


def test_turning_suppression_on_is_forbidden() -> None:
    change = ProposedChange("Queue", "gas", Action.UPDATE, {SUPPRESS: False}, {SUPPRESS: True})
    assert classify_queue(change).safety is Safety.FORBIDDEN


HOLD = {"matter": "m", "scope": {"users": ["a@x"]}, "conversations": ["c1", "c2"]}
RELEASE = {"approvedBy": "gc", "reason": "closed", "ticket": "T-1"}


@pytest.mark.parametrize(
    ("action", "before", "after", "total", "safety"),
    [
        pytest.param(Action.CREATE, None, HOLD, 2, Safety.REVERSIBLE, id="placing-a-hold"),
        pytest.param(
            Action.UPDATE,
            HOLD,
            {**HOLD, "conversations": ["c1", "c2", "c3"]},
            3,
            Safety.REVERSIBLE,
            id="auto-extend-adds",
        ),
        pytest.param(
            Action.UPDATE,
            HOLD,
            {**HOLD, "conversations": ["c1"]},
            1,
            Safety.FORBIDDEN,
            id="losing-protection-without-release",
        ),
        pytest.param(
            Action.UPDATE,
            HOLD,
            {**HOLD, "release": RELEASE, "conversations": []},
            0,
            Safety.ONE_WAY,
            id="approved-release",
        ),
        pytest.param(
            Action.UPDATE,
            HOLD,
            {**HOLD, "release": {"approvedBy": "gc"}, "conversations": []},
            0,
            Safety.FORBIDDEN,
            id="incomplete-release",
        ),
        pytest.param(Action.CREATE, None, HOLD, ORG_PROTECTION_LIMIT + 1, Safety.FORBIDDEN, id="over-the-org-limit"),
        pytest.param(
            Action.UPDATE,
            HOLD,
            {**HOLD, "matter": "m2"},
            ORG_PROTECTION_LIMIT + 5,
            Safety.REVERSIBLE,
            id="over-the-limit-but-adding-nothing",
        ),
    ],
)
def test_hold_safety(
    action: Action, before: dict[str, Any] | None, after: dict[str, Any], total: int, safety: Safety
) -> None:
    result = classify_hold(ProposedChange("LegalHold", "h", action, before, after), total)
    assert result.safety is safety, result.reason
    if total > ORG_PROTECTION_LIMIT and safety is Safety.FORBIDDEN:
        assert str(total) in result.reason and str(ORG_PROTECTION_LIMIT) in result.reason


def test_protection_calls_carry_at_most_100_ids() -> None:
    ids = [f"c{i:04}" for i in range(250)]
    assert [len(b) for b in batches(ids + ids[:10])] == [100, 100, 50]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param(
            {"from": "2026-07-01", "to": "2026-09-30"},
            "2026-07-01T00:00:00.000Z/2026-10-01T00:00:00.000Z",
            id="closed-period-includes-the-last-day",
        ),
        pytest.param(
            {"from": "2026-07-01"}, "2026-07-01T00:00:00.000Z/2026-11-22T00:00:00.000Z", id="open-end-runs-to-tomorrow"
        ),
        pytest.param({}, "2000-01-01T00:00:00.000Z/2026-11-22T00:00:00.000Z", id="no-period"),
    ],
)
def test_hold_interval(scope: dict[str, Any], expected: str) -> None:
    assert interval(scope, dt.date(2026, 11, 21)) == expected
