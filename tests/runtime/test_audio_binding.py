"""plan_bindings: which stamped calls get an audio_archived record, from what the archive holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reconciler.providers.archive_layout import ArchiveKey
from reconciler.runtime.audio_binding import plan_bindings
from reconciler.runtime.evidence_chain import GENESIS, EvidenceRecord

HOUR = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
GOOD, OTHER = "a" * 64, "b" * 64


def stamped(conversation: str) -> EvidenceRecord:
    return EvidenceRecord(
        1, conversation, "rec", "c" * 64, None, "attached", "2026-11-20T09:00:00.000000Z", GENESIS, "d" * 64
    )


def archive(files: dict[str, Any]) -> tuple[dict[str, ArchiveKey], dict[str, Any], dict[str, str]]:
    objects, metadata, hashes = {}, {}, {}
    for name, content in files.items():
        key = f"org/conv/{name}"
        objects[key] = ArchiveKey("org", HOUR, "c1", name)
        if name == "_metadata.json":
            metadata[key] = content
        else:
            hashes[key] = content
    return objects, metadata, hashes


CASES = [
    ("audio-and-matching-metadata", {"a.opus": GOOD, "_metadata.json": {"sha256": GOOD}}, "bound"),
    ("metadata-hash-in-upper-case", {"a.opus": GOOD, "_metadata.json": {"sha256": GOOD.upper()}}, "bound"),
    (
        "metadata-names-the-file",
        {"a.opus": OTHER, "b.opus": GOOD, "_metadata.json": {"fileName": "b.opus", "sha256": GOOD}},
        "bound",
    ),
    ("audio-replaced", {"a.opus": OTHER, "_metadata.json": {"sha256": GOOD}}, "mismatched"),
    ("metadata-without-hash", {"a.opus": GOOD, "_metadata.json": {}}, "mismatched"),
    ("no-metadata-yet", {"a.opus": GOOD}, "awaiting"),
    ("metadata-not-json", {"a.opus": GOOD, "_metadata.json": None}, "awaiting"),
    ("nothing-archived", {}, "awaiting"),
]


@pytest.mark.parametrize(("files", "outcome"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_bindings(files: dict[str, Any], outcome: str) -> None:
    report = plan_bindings([stamped("c1")], *archive(files))
    got = {"bound": report.bound, "mismatched": report.mismatched, "awaiting": report.awaiting}
    assert [name for name, found in got.items() if found] == [outcome]
    if outcome == "bound":
        assert report.bound == [("c1", GOOD)]
