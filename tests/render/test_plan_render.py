"""Plan renderers (text, Markdown, JSON) and the apply summary, on plans built by hand: every
action, adopt, orphaned, one-way, forbidden, findings waived and not. Also: the example in
docs/plan-format.md is a valid saved plan of the current format."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.plan import Plan, PlanBinding, PlanFinding, ResourceChange
from reconciler.engine.reports import ApplyResult, Outcome, ResourceOutcome
from reconciler.providers.base import Action, AttributeChange, Safety
from reconciler.render.apply_text import NEXT_STEP, render_apply_text
from reconciler.render.plan_markdown import render_plan_markdown
from reconciler.render.plan_text import render_plan_json, render_plan_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plan-format.md"
CREATED = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
ANSI = "\x1b["
APPLY = "recon apply plan.json"


def change(address: str, action: Action, **kwargs: Any) -> ResourceChange:
    kind, name = address.split("/")
    kwargs.setdefault("safety", Safety.REVERSIBLE)
    kwargs.setdefault("reason", f"because {action.value}")
    return ResourceChange(address, kind, name, action, **kwargs)


def finding(rule: str, severity: str = "error", *, waived: bool = False, message: str = "too short") -> PlanFinding:
    return PlanFinding(rule, severity, "ArchiveBucket/voice", message, "m/archive.yaml:4", "spec.x", "fix it", waived)


def plan(*changes: ResourceChange, findings: tuple[PlanFinding, ...] = ()) -> Plan:
    return Plan(
        PlanBinding("lineage-1", 7, "sha256:abc", "prod"),
        CREATED,
        CREATED + dt.timedelta(hours=24),
        list(changes),
        list(findings),
        {"prune": False, "forget": False},
    )


CREATE = change(
    "Queue/sales",
    Action.CREATE,
    after={"name": "sales", "recording": {"enabled": True, "mode": "all"}, "members": ["a", "b"]},
    declared_at="m/queues.yaml:3",
)
UPDATE = change(
    "ArchiveBucket/voice",
    Action.UPDATE,
    id="bucket",
    attributes=(
        AttributeChange(("objectLock", "defaultRetention"), "7y", "10y"),
        AttributeChange(("tags", "desk"), None, "fx"),
        AttributeChange(("readers", 1), "arn:role/old", None),
    ),
)
DELETE = change("Queue/old", Action.DELETE, id="q1", before={"name": "old", "flags": {"x": 1}}, orphaned=True)
REPLACE = change("RecordingPolicy/p", Action.REPLACE, attributes=(AttributeChange(("regime",), "mifid2", "fca"),))
FORGET = change("LegalHold/h", Action.FORGET, before={"name": "h"}, orphaned=True)
ADOPT_NOOP = change("Queue/found", Action.NOOP, adopt=True)
ADOPT_UPDATE = change("Queue/found2", Action.UPDATE, adopt=True, attributes=(AttributeChange(("x",), 1, 2),))
ORPHAN_NOOP = change("Queue/stale", Action.NOOP, orphaned=True, reason="kept because --prune was not given")
NOOP = change("Queue/same", Action.NOOP, reason="matches the manifests")
ONE_WAY = dataclasses.replace(UPDATE, safety=Safety.ONE_WAY, safety_reason="lengthening retention is permanent")
FORBIDDEN = dataclasses.replace(
    UPDATE, address="ArchiveBucket/locked", safety=Safety.FORBIDDEN, safety_reason="shortening COMPLIANCE retention"
)

EVERYTHING = plan(
    CREATE, ONE_WAY, DELETE, REPLACE, FORGET, ADOPT_NOOP, ADOPT_UPDATE, ORPHAN_NOOP, NOOP,
    findings=(finding("mifid2.retention-minimum", waived=True), finding("recon.waiver-unused", "warning")),
)  # fmt: skip


# ---- text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            CREATE,
            [
                "  + Queue/sales",
                "    declared at m/queues.yaml:3",
                "    reason: because create",
                '    + name = "sales"',
                "    + recording.enabled = true",
                '    + recording.mode = "all"',
                '    + members = ["a","b"]',
            ],
            id="create-shows-after-leaves-flattened-lists-compact",
        ),
        pytest.param(
            UPDATE,
            [
                "  ~ ArchiveBucket/voice",
                '    ~ objectLock.defaultRetention: "7y" -> "10y"',
                '    + tags.desk = "fx"',
                '    - readers[1] = "arn:role/old"',
            ],
            id="update-one-line-per-attribute-added-removed-changed",
        ),
        pytest.param(
            DELETE, ["  - Queue/old", '    - name = "old"', "    - flags.x = 1"], id="delete-shows-before-leaves"
        ),
        pytest.param(REPLACE, ["-/+ RecordingPolicy/p", '    ~ regime: "mifid2" -> "fca"'], id="replace-symbol"),
        pytest.param(
            FORGET, ["  x LegalHold/h (forget: removed from recon state, left on the platform)"], id="forget-note"
        ),
        pytest.param(
            ADOPT_NOOP,
            ["  = Queue/found (adopt: exists on the platform, will be recorded in state)"],
            id="adopt-without-changes-listed-with-note",
        ),
        pytest.param(
            ADOPT_UPDATE,
            ["  ~ Queue/found2 (adopt: exists on the platform, will be recorded in state)", "    ~ x: 1 -> 2"],
            id="adopt-with-update",
        ),
        pytest.param(
            ONE_WAY,
            ["    ONE-WAY: lengthening retention is permanent — apply needs --allow-one-way"],
            id="one-way-names-the-flag",
        ),
        pytest.param(
            FORBIDDEN,
            ["    FORBIDDEN: shortening COMPLIANCE retention — this change blocks the plan"],
            id="forbidden-says-it-blocks",
        ),
    ],
)
def test_text_block_per_changing_resource(entry: ResourceChange, expected: list[str]) -> None:
    lines = render_plan_text(plan(entry), color=False).splitlines()
    for line in expected:
        assert line in lines


@pytest.mark.parametrize(
    ("the_plan", "summary", "final"),
    [
        pytest.param(
            plan(),
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            "No changes. The live estate matches the manifests.",
            id="empty-plan-no-changes",
        ),
        pytest.param(
            plan(NOOP, NOOP),
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 2 unchanged.",
            "No changes. The live estate matches the manifests.",
            id="only-noops-no-changes",
        ),
        pytest.param(
            plan(CREATE, CREATE, UPDATE, DELETE, NOOP, NOOP, NOOP),
            "Plan: 2 to create, 1 to update, 0 to replace, 1 to delete, 0 to forget, 3 unchanged, 1 orphaned.",
            "Plan: 2 to create, 1 to update, 0 to replace, 1 to delete, 0 to forget, 3 unchanged, 1 orphaned.",
            id="reversible-changes-end-with-the-count-line",
        ),
        pytest.param(
            plan(ADOPT_NOOP, ORPHAN_NOOP),
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 2 unchanged, 1 to adopt, 1 orphaned.",
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 2 unchanged, 1 to adopt, 1 orphaned.",
            id="adopt-and-orphaned-counted-when-non-zero",
        ),
        pytest.param(
            plan(FORBIDDEN, findings=(finding("a.rule"), finding("b.rule"))),
            "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            "BLOCKED: 1 forbidden change, 2 compliance errors — this plan cannot be applied.",
            id="forbidden-and-errors-block",
        ),
        pytest.param(
            plan(findings=(finding("a.rule"),)),
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            "BLOCKED: 1 compliance error — this plan cannot be applied.",
            id="an-error-finding-blocks-even-without-changes",
        ),
        pytest.param(
            plan(CREATE, findings=(finding("a.rule", waived=True), finding("b.rule", "warning"))),
            "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            id="waived-errors-and-warnings-do-not-block",
        ),
        pytest.param(
            plan(ONE_WAY, CREATE),
            "Plan: 1 to create, 1 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            "One-way changes: apply needs --allow-one-way.",
            id="one-way-needs-the-flag",
        ),
        pytest.param(
            plan(FORBIDDEN, ONE_WAY),
            "Plan: 0 to create, 2 to update, 0 to replace, 0 to delete, 0 to forget, 0 unchanged.",
            "BLOCKED: 1 forbidden change — this plan cannot be applied.",
            id="blocked-wins-over-one-way",
        ),
    ],
)
def test_text_summary_and_verdict(the_plan: Plan, summary: str, final: str) -> None:
    lines = render_plan_text(the_plan, color=False).splitlines()
    assert summary in lines
    assert lines[-1] == final


def test_noops_are_counted_not_listed_and_orphans_have_their_own_section() -> None:
    text = render_plan_text(plan(NOOP, ORPHAN_NOOP, DELETE), color=False)
    assert "Queue/same" not in text
    head, orphans = text.split("Orphaned (not in manifests; kept: see each reason):\n")
    assert "Queue/stale" not in head
    assert "    Queue/stale: kept because --prune was not given" in orphans.splitlines()
    assert "  - Queue/old" in head.splitlines(), "an orphan being deleted is a change, not an orphan listing"


def test_findings_show_rule_severity_location_message_and_waived() -> None:
    lines = render_plan_text(EVERYTHING, color=False).splitlines()
    assert "  waived error[mifid2.retention-minimum] ArchiveBucket/voice at m/archive.yaml:4: too short" in lines
    assert "  warning[recon.waiver-unused] ArchiveBucket/voice at m/archive.yaml:4: too short" in lines


def test_header_names_target_binding_and_expiry() -> None:
    first, second, *_ = render_plan_text(EVERYTHING, color=False).splitlines()
    assert first == 'recon plan for target "prod" (state lineage lineage-1, serial 7)'
    assert second == "Created 2026-11-21T10:00Z, expires 2026-11-22T10:00Z."


@pytest.mark.parametrize(
    "the_plan",
    [
        pytest.param(EVERYTHING, id="every-action"),
        pytest.param(plan(FORBIDDEN, findings=(finding("a.rule"),)), id="blocked"),
        pytest.param(plan(), id="no-changes"),
    ],
)
def test_colour_only_when_asked(the_plan: Plan) -> None:
    assert ANSI not in render_plan_text(the_plan, color=False)
    coloured = render_plan_text(the_plan, color=True)
    assert ANSI in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == render_plan_text(the_plan, color=False)


# ---- Markdown --------------------------------------------------------------------------


def _cells(row: str) -> list[str]:
    """Split a GFM table row as GitHub does: a backslash escapes the next character."""
    cells, current, index = [], "", 0
    while index < len(row):
        char = row[index]
        if char == "\\" and index + 1 < len(row):
            current += row[index : index + 2]
            index += 2
            continue
        if char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
        index += 1
    cells.append(current)
    return cells[1:-1]


@pytest.mark.parametrize(
    ("the_plan", "details"),
    [
        pytest.param(EVERYTHING, 7, id="every-action-one-details-each-changing-entry"),
        pytest.param(plan(NOOP, ORPHAN_NOOP), 0, id="noops-and-orphans-have-no-details"),
        pytest.param(plan(CREATE), 1, id="single-create"),
    ],
)
def test_markdown_one_details_per_changing_resource(the_plan: Plan, details: int) -> None:
    markdown = render_plan_markdown(the_plan, apply_command=APPLY)
    assert markdown.count("<details>") == details
    assert markdown.count("</details>") == details


def test_markdown_details_summary_and_diff() -> None:
    markdown = render_plan_markdown(plan(ONE_WAY, CREATE, ADOPT_NOOP), apply_command=APPLY)
    assert "<details><summary>~ ArchiveBucket/voice — update (one-way)</summary>" in markdown
    assert "<details><summary>= Queue/found — adopt (reversible)</summary>" in markdown
    assert '```diff\n- objectLock.defaultRetention = "7y"\n+ objectLock.defaultRetention = "10y"\n' in markdown
    assert '+ recording.enabled = true\n+ recording.mode = "all"\n' in markdown


@pytest.mark.parametrize(
    ("the_plan", "status", "has_apply", "also"),
    [
        pytest.param(
            plan(FORBIDDEN, findings=(finding("a.rule"),)),
            ":no_entry: blocked",
            False,
            "It has 1 forbidden change, 1 compliance error:",
            id="blocked-omits-apply-and-says-why",
        ),
        pytest.param(
            plan(ONE_WAY),
            ":warning: one-way",
            True,
            "apply needs `--allow-one-way`",
            id="one-way-keeps-apply-with-flag",
        ),
        pytest.param(plan(CREATE), ":white_check_mark: ready to apply", True, "### Apply", id="ready"),
        pytest.param(plan(NOOP), ":white_check_mark: no changes", False, "nothing to apply", id="no-changes"),
    ],
)
def test_markdown_status_and_apply_section(the_plan: Plan, status: str, has_apply: bool, also: str) -> None:
    markdown = render_plan_markdown(the_plan, apply_command=APPLY)
    assert status in markdown.splitlines()[0]
    assert (f"```sh\n{APPLY}\n```" in markdown) is has_apply
    assert also in markdown


def test_markdown_findings_table_and_footer() -> None:
    markdown = render_plan_markdown(EVERYTHING, apply_command=APPLY)
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rows[0] == "| severity | rule | resource | location | message |"
    assert rows[1:] == [
        "| error (waived) | mifid2.retention-minimum | ArchiveBucket/voice | m/archive.yaml:4 | too short |",
        "| warning | recon.waiver-unused | ArchiveBucket/voice | m/archive.yaml:4 | too short |",
    ]
    assert markdown.rstrip().endswith(
        "9 resources: 1 to create, 2 to update, 1 to replace, 1 to delete, 1 to forget, 3 unchanged, "
        "2 to adopt, 3 orphaned; 2 findings (1 warning, 1 waived); plan expires 2026-11-22T10:00Z"
    )


def test_markdown_table_cells_never_hold_an_unescaped_pipe() -> None:
    nasty = plan(
        CREATE,
        findings=(
            finding("a|rule", message="a | b || c \\| d"),
            finding("b.rule", "warning", message="line one\nline | two"),
        ),
    )
    markdown = render_plan_markdown(nasty, apply_command=APPLY)
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(rows) == 4
    assert all(len(_cells(row)) == 5 for row in rows), rows
    assert "a \\| b \\|\\| c \\\\\\| d" in rows[2]


def test_markdown_fences_survive_backticks_in_values() -> None:
    odd = change("Queue/q", Action.UPDATE, attributes=(AttributeChange(("note",), "a", "```x```"),))
    markdown = render_plan_markdown(plan(odd), apply_command=APPLY)
    assert '````diff\n- note = "a"\n+ note = "```x```"\n````' in markdown


def test_markdown_is_deterministic() -> None:
    first = render_plan_markdown(EVERYTHING, apply_command=APPLY)
    again = render_plan_markdown(EVERYTHING, apply_command=APPLY)
    assert first == again
    assert ANSI not in first


# ---- JSON ------------------------------------------------------------------------------


def test_json_is_the_saved_plan_document() -> None:
    text = render_plan_json(EVERYTHING)
    assert text.endswith("}\n")
    assert json.loads(text) == EVERYTHING.to_json()
    assert Plan.loads(text, source="plan.json").to_json() == EVERYTHING.to_json()


# ---- docs/plan-format.md ---------------------------------------------------------------


def _doc_example() -> str:
    match = re.search(r"```json\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match, "docs/plan-format.md must hold a ```json example"
    return match.group(1)


def test_docs_example_is_a_valid_saved_plan() -> None:
    example = _doc_example()
    loaded = Plan.loads(example, source="docs/plan-format.md")
    document = json.loads(example)
    again = loaded.to_json()
    for volatile in ("recon_version", "digest"):
        document.pop(volatile)
        again.pop(volatile)
    assert again == document, "the example no longer matches Plan.to_json(); regenerate it"


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for k, v in value.items() if k not in ("before", "after", "counts")))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


def test_docs_document_every_field_of_the_format() -> None:
    text = DOCS.read_text()
    for key in sorted(_keys(EVERYTHING.to_json())):
        assert f"`{key}`" in text or f".{key}`" in text, f"docs/plan-format.md does not document {key!r}"


# ---- apply -----------------------------------------------------------------------------


def outcome(address: str, what: Outcome, message: str = "") -> ResourceOutcome:
    return ResourceOutcome(address, Action.UPDATE, what, message)


@pytest.mark.parametrize(
    ("outcomes", "expected", "hint"),
    [
        pytest.param(
            [outcome("Queue/a", Outcome.SUCCEEDED)] * 10,
            ["Apply complete: 10 succeeded, 0 failed, 0 skipped."],
            False,
            id="all-succeeded",
        ),
        pytest.param(
            [
                outcome("Queue/a", Outcome.SUCCEEDED),
                outcome("Queue/b", Outcome.FAILED, "403 Forbidden: missing permission routing:queue:edit"),
                outcome("Queue/c", Outcome.SKIPPED, "depends on Queue/b, which failed"),
                outcome("Queue/d", Outcome.SKIPPED),
            ],
            [
                "  failed  update Queue/b: 403 Forbidden: missing permission routing:queue:edit",
                "  skipped update Queue/c: depends on Queue/b, which failed",
                "  skipped update Queue/d: not attempted: a resource it depends on failed, or the run was interrupted",
                "Apply failed: 1 succeeded, 1 failed, 2 skipped.",
            ],
            True,
            id="failure-and-skips-listed-with-hint",
        ),
        pytest.param(
            [outcome("Queue/a", Outcome.SUCCEEDED), outcome("Queue/b", Outcome.SKIPPED, "interrupted")],
            ["  skipped update Queue/b: interrupted", "Apply incomplete: 1 succeeded, 0 failed, 1 skipped."],
            True,
            id="skips-without-failure-are-incomplete-not-complete",
        ),
        pytest.param([], ["Apply complete: 0 succeeded, 0 failed, 0 skipped."], False, id="nothing-to-do"),
    ],
)
def test_apply_text(outcomes: list[ResourceOutcome], expected: list[str], hint: bool) -> None:
    result = ApplyResult(outcomes, serial=8)
    lines = render_apply_text(result, color=False).splitlines()
    assert lines[: len(expected)] == expected
    assert (NEXT_STEP in lines) is hint
    assert ANSI not in "\n".join(lines)
    coloured = render_apply_text(result, color=True)
    assert ANSI in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == "\n".join(lines) + "\n"
