"""The pure archive-integrity comparison: every outcome, from hand-built platform and archive
inputs (no I/O)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.engine.archive_integrity import Outcome, compare
from reconciler.providers.archive_layout import METADATA_FILE, conversation_prefix, parse_key
from reconciler.providers.genesys.recordings import Participant, PlatformConversation

ORG = "org-1"
START = dt.datetime(2026, 10, 5, 9, 30, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=3)
AUDIO = b"pseudo-audio"
CID = "c-1"
PLATFORM = PlatformConversation(
    CID,
    START,
    END,
    frozenset({Participant("p0", "customer"), Participant("p1", "acd"), Participant("p2", "agent", "u-1")}),
)


def good_metadata() -> dict[str, Any]:
    return {
        "conversationId": CID,
        "recordingId": "r-1",
        "participants": [
            {"id": "p0", "purpose": "customer"},
            {"id": "p1", "purpose": "acd", "queueId": "q-1"},
            {"id": "p2", "purpose": "agent", "userId": "u-1"},
        ],
        "startTime": "2026-10-05T09:30:00.000Z",
        "endTime": "2026-10-05T09:33:00Z",
        "fileName": "r-1.opus",
        "sha256": hashlib.sha256(AUDIO).hexdigest(),
    }


Archive = tuple[dict[str, Any], dict[str, str]]  # metadata key -> document, audio key -> hash
Edit = Callable[[dict[str, Any], dict[str, str]], object]
PREFIX = conversation_prefix(ORG, START, CID)
META, OPUS = PREFIX + METADATA_FILE, PREFIX + "r-1.opus"


def run(edit: Edit, platform: list[PlatformConversation] | None = None) -> Any:
    metadata: dict[str, Any] = {META: good_metadata()}
    hashes = {OPUS: hashlib.sha256(AUDIO).hexdigest()}
    edit(metadata, hashes)
    keys = [*metadata, *hashes]
    objects = {k: p for k in keys if (p := parse_key(k)) is not None}
    return compare(
        [PLATFORM] if platform is None else platform,
        objects,
        metadata,
        hashes,
        bucket="b",
        org_id=ORG,
        first=START.date(),
        last=START.date(),
    )


def set_field(name: str, value: Any) -> Edit:
    return lambda metadata, hashes: metadata[META].__setitem__(name, value)


def drop_field(name: str) -> Edit:
    return lambda metadata, hashes: metadata[META].pop(name)


CASES: list[tuple[str, Edit, Outcome, tuple[str, ...]]] = [
    ("intact: audio, metadata and hash all agree", lambda m, h: None, Outcome.OK, ()),
    ("equal instants written differently still agree", set_field("startTime", "2026-10-05T11:30:00+02:00"), Outcome.OK, ()),
    ("audio object deleted", lambda m, h: h.clear(), Outcome.MISSING_RECORDING, ()),
    ("metadata names an audio file that is not there", set_field("fileName", "other.opus"), Outcome.MISSING_RECORDING, ()),
    ("nothing archived at all", lambda m, h: [d.clear() for d in (m, h)], Outcome.MISSING_RECORDING, ()),
    ("metadata deleted", lambda m, h: m.clear(), Outcome.MISSING_METADATA, ()),
    ("metadata is not JSON", lambda m, h: m.__setitem__(META, None), Outcome.BAD_METADATA, ("_metadata.json",)),
    ("conversationId differs", set_field("conversationId", "c-2"), Outcome.BAD_METADATA, ("conversationId",)),
    ("participants missing", drop_field("participants"), Outcome.BAD_METADATA, ("participants",)),
    ("an agent missing from participants", set_field("participants", good_metadata()["participants"][:2]), Outcome.BAD_METADATA, ("participants",)),
    ("startTime differs", set_field("startTime", "2026-10-05T09:31:00Z"), Outcome.BAD_METADATA, ("startTime",)),
    ("endTime missing", drop_field("endTime"), Outcome.BAD_METADATA, ("endTime",)),
    ("sha256 missing", drop_field("sha256"), Outcome.BAD_METADATA, ("sha256",)),
    ("several fields named at once", lambda m, h: (m[META].pop("startTime"), m[META].pop("participants")), Outcome.BAD_METADATA, ("participants", "startTime")),
    ("audio overwritten: hash differs from metadata", lambda m, h: h.__setitem__(OPUS, "0" * 64), Outcome.HASH_MISMATCH, ()),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "outcome", "fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_outcome(edit: Edit, outcome: Outcome, fields: tuple[str, ...]) -> None:
    report = run(edit)
    (finding,) = report.findings
    assert (finding.conversation_id, finding.outcome, finding.fields) == (CID, outcome, fields)
    assert report.has_gaps is outcome.is_gap
    assert report.totals[outcome.value] == 1
    assert report.totals["gaps"] == (1 if outcome.is_gap else 0)


def test_archive_only_conversation_is_unexpected_not_a_gap() -> None:
    report = run(lambda m, h: None, platform=[])
    (finding,) = report.findings
    assert finding.outcome is Outcome.UNEXPECTED
    assert finding.folder == PREFIX
    assert not report.has_gaps
    assert report.totals == {
        **dict.fromkeys((o.value for o in Outcome), 0),
        "unexpected": 1,
        "conversations": 0,
        "gaps": 0,
    }


def test_platform_conversation_missing_beside_an_intact_one() -> None:
    other = PlatformConversation("c-2", START, END, PLATFORM.participants)
    report = run(lambda m, h: None, platform=[PLATFORM, other])
    assert [(f.conversation_id, f.outcome) for f in report.findings] == [
        (CID, Outcome.OK),
        ("c-2", Outcome.MISSING_RECORDING),
    ]
    assert report.totals["conversations"] == 2
    assert [f.conversation_id for f in report.gaps] == ["c-2"]
