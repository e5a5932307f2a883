"""Drift renderers (text, JSON, Markdown) for every side: drift (live, live-deleted, both)
is reported with who changed it and how to revert or accept; pending changes (manifests,
unmanaged) are listed separately and are not drift."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from reconciler.engine.reports import DriftItem, DriftReport, DriftSide
from reconciler.providers.base import AttributeChange
from reconciler.render.drift import render_drift_json, render_drift_markdown, render_drift_text

CHECKED = dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC)
ANSI = "\x1b["
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plan-format.md"

LIVE = DriftItem(
    "Queue/fx-spot",
    "Queue",
    "fx-spot",
    DriftSide.LIVE,
    live_changes=(AttributeChange(("members",), ["a"], ["a", "b"]),),
    changed_by="admin.jones@acme.example",
    declared_at="m/queues.yaml:20",
)
LIVE_DELETED = DriftItem(
    "ArchiveBucket/voice", "ArchiveBucket", "voice", DriftSide.LIVE_DELETED, declared_at="m/archive.yaml:1"
)
BOTH = DriftItem(
    "RecordingPolicy/p",
    "RecordingPolicy",
    "p",
    DriftSide.BOTH,
    live_changes=(AttributeChange(("retention",), "7y", None),),
    manifest_changes=(AttributeChange(("retention",), "7y", "10y"),),
)
MANIFESTS = DriftItem(
    "Queue/fx-ndf",
    "Queue",
    "fx-ndf",
    DriftSide.MANIFESTS,
    manifest_changes=(AttributeChange(("region",), "us-east-1", "us-east-2"),),
    declared_at="m/queues.yaml:40",
)
UNMANAGED = DriftItem("Queue/new", "Queue", "new", DriftSide.UNMANAGED, declared_at="m/queues.yaml:60")


def report(*items: DriftItem) -> DriftReport:
    return DriftReport("fx-us-prod", CHECKED, 14, "lineage-1", 42, list(items))


CASES = [
    pytest.param(
        LIVE,
        True,
        [
            "  ~ Queue/fx-spot: changed on the platform, outside recon (by admin.jones@acme.example)",
            "      declared at m/queues.yaml:20",
            '      ~ members: ["a"] -> ["a","b"]',
        ],
        [
            "### `Queue/fx-spot` — changed on the platform, outside recon",
            "Changed outside recon by **admin.jones@acme.example**.",
            '| `members` | `["a"]` | `["a","b"]` |',
            "- **Revert**: `recon apply` re-applies the manifests, setting the values back.",
            '- **Accept**: edit the manifest (declared at `m/queues.yaml:20`): set `members` to `["a","b"]`, '
            "then run `recon plan`.",
        ],
        id="live-drift-who-before-after-revert-accept",
    ),
    pytest.param(
        LIVE_DELETED,
        True,
        ["  - ArchiveBucket/voice: deleted on the platform, outside recon"],
        [
            "Deleted outside recon; the platform's audit trail does not say by whom.",
            "- **Revert**: `recon apply` creates it again from the manifests.",
        ],
        id="live-deleted-drift-revert-recreates",
    ),
    pytest.param(
        BOTH,
        True,
        [
            "  ! RecordingPolicy/p: changed on the platform, outside recon, and in the manifests",
            '      ~ retention: "7y" -> null',
            '      ~ retention: "7y" -> "10y"',
        ],
        [
            '| `retention` | `"7y"` | `null` |',
            "The manifests changed too (not applied yet):",
            '| `retention` | `"7y"` | `"10y"` |',
            "- **Accept**: edit the manifest: remove `retention`, then run `recon plan`.",
        ],
        id="both-sides-show-live-and-manifest-changes",
    ),
    pytest.param(
        MANIFESTS,
        False,
        [
            "  ~ Queue/fx-ndf: the manifests changed and were not applied yet",
            '      ~ region: "us-east-1" -> "us-east-2"',
        ],
        [
            "- `Queue/fx-ndf` — the manifests changed and were not applied yet; declared at `m/queues.yaml:40`",
            '  - `region`: `"us-east-1"` → `"us-east-2"`',
        ],
        id="manifests-is-pending-not-drift",
    ),
    pytest.param(
        UNMANAGED,
        False,
        ["  + Queue/new: declared in the manifests, never applied (a pending create)"],
        ["- `Queue/new` — declared in the manifests, never applied (a pending create); declared at `m/queues.yaml:60`"],
        id="unmanaged-is-a-pending-create",
    ),
]


@pytest.mark.parametrize(("item", "is_drift", "text_lines", "markdown_lines"), CASES)
def test_drift_text(item: DriftItem, is_drift: bool, text_lines: list[str], markdown_lines: list[str]) -> None:
    text = render_drift_text(report(item), color=False)
    lines = text.splitlines()
    for line in text_lines:
        assert line in lines
    section = "Drift (changed outside recon):" if is_drift else "Pending changes, not drift"
    assert section in text
    other = "Pending changes, not drift" if is_drift else "Drift (changed outside recon):"
    assert other not in text
    if is_drift:
        assert lines[-2] == "Drift: 1 resource changed outside recon."
        assert "run `recon apply`" in lines[-1]
    else:
        assert lines[-1] == "No drift: the live estate matches what recon last applied."
    assert ANSI not in text
    assert ANSI in render_drift_text(report(item), color=True)


@pytest.mark.parametrize(("item", "is_drift", "text_lines", "markdown_lines"), CASES)
def test_drift_json(item: DriftItem, is_drift: bool, text_lines: list[str], markdown_lines: list[str]) -> None:
    document = json.loads(render_drift_json(report(item)))
    assert document["format_version"] == 1
    assert (document["target"], document["lineage"], document["serial"]) == ("fx-us-prod", "lineage-1", 42)
    assert document["checked_at"] == "2026-11-21T06:00:00+00:00"
    assert document["has_drift"] is is_drift
    counts = document["counts"]
    assert counts["resources_checked"] == 14
    assert (counts["drifted"], counts["pending"]) == ((1, 0) if is_drift else (0, 1))
    assert counts[item.side.value] == 1
    (entry,) = document["items"]
    assert entry["address"] == item.address
    assert entry["side"] == item.side.value
    assert entry["is_drift"] is is_drift
    assert entry["changed_by"] == item.changed_by
    assert entry["declared_at"] == item.declared_at
    for key, changes in (("live_changes", item.live_changes), ("manifest_changes", item.manifest_changes)):
        assert [(c["path"], c["before"], c["after"]) for c in entry[key]] == [
            (c.dotted, c.before, c.after) for c in changes
        ]


@pytest.mark.parametrize(("item", "is_drift", "text_lines", "markdown_lines"), CASES)
def test_drift_markdown(item: DriftItem, is_drift: bool, text_lines: list[str], markdown_lines: list[str]) -> None:
    markdown = render_drift_markdown(report(item), estate_name="fx-desk-us")
    lines = markdown.splitlines()
    for line in markdown_lines:
        assert line in lines
    if is_drift:
        assert lines[0] == "## :rotating_light: Drift in fx-desk-us: 1 resource changed outside recon"
        assert "### Pending changes, not drift" not in markdown
    else:
        assert lines[0] == "## :white_check_mark: No drift in fx-desk-us"
        assert "### Pending changes, not drift" in lines
    assert "Checked 2026-11-21T06:00Z on target `fx-us-prod`" in markdown
    assert markdown == render_drift_markdown(report(item), estate_name="fx-desk-us")


def test_drift_and_pending_are_separate_in_one_report() -> None:
    everything = report(LIVE, LIVE_DELETED, BOTH, MANIFESTS, UNMANAGED)
    text = render_drift_text(everything, color=False)
    drift, pending = text.split("Pending changes, not drift")
    assert all(address in drift for address in ("Queue/fx-spot", "ArchiveBucket/voice", "RecordingPolicy/p"))
    assert all(address in pending for address in ("Queue/fx-ndf", "Queue/new"))
    assert "14 resources checked: 3 drifted, 2 pending." in text
    markdown = render_drift_markdown(everything, estate_name="fx-desk-us")
    assert "14 resources checked, 3 resources drifted, 2 pending changes." in markdown
    drifted_md, pending_md = markdown.split("### Pending changes, not drift")
    assert drifted_md.count("- **Revert**") == 3
    assert "Queue/fx-ndf" not in drifted_md
    assert "Queue/new" in pending_md
    document = json.loads(render_drift_json(everything))
    assert [i["side"] for i in document["items"]] == ["live", "live-deleted", "both", "manifests", "unmanaged"]
    assert document["counts"] == {
        "resources_checked": 14,
        "drifted": 3,
        "pending": 2,
        "live": 1,
        "live-deleted": 1,
        "manifests": 1,
        "both": 1,
        "unmanaged": 1,
    }


def test_drift_markdown_escapes_pipes_and_backticks_in_values() -> None:
    odd = DriftItem(
        "Queue/q",
        "Queue",
        "q",
        DriftSide.LIVE,
        live_changes=(AttributeChange(("description",), "a|b", "x`|`y"),),
    )
    markdown = render_drift_markdown(report(odd), estate_name="e")
    (row,) = [line for line in markdown.splitlines() if line.startswith("| `description`")]
    assert row == '| `description` | `"a\\|b"` | ``"x`\\|`y"`` |'
    assert len(re.findall(r"(?<!\\)\|", row)) == 4


def test_no_drift_at_all() -> None:
    empty = report()
    assert render_drift_text(empty, color=False).splitlines()[-1] == (
        "No drift: the live estate matches what recon last applied."
    )
    markdown = render_drift_markdown(empty, estate_name="fx-desk-us")
    assert "The live estate matches what recon last applied." in markdown
    assert json.loads(render_drift_json(empty))["items"] == []


def test_docs_document_the_drift_json_fields() -> None:
    text = DOCS.read_text()
    document = json.loads(render_drift_json(report(LIVE, BOTH)))
    keys = set(document) | set(document["counts"]) | set(document["items"][0])
    keys |= set(document["items"][0]["live_changes"][0])
    for key in sorted(keys):
        assert f"`{key}`" in text or f".{key}`" in text or f"[].{key}`" in text, key
