"""A plan for people at a terminal (Terraform-like text) and for tools (JSON), plus the small
helpers the Markdown renderer shares: action symbols, attribute leaves, compact values,
summary counts and what blocks a plan.

Text layout: a header (target, binding, times, options, the symbols used), one block per
resource that changes something (symbol, address, notes, declared_at, reason, safety, one
line per attribute), the orphaned resources that --prune would delete, the findings, a
`Plan: …` count line and one verdict line (blocked / one-way / no changes). Colour is added
only when the caller asks for it (the CLI decides from the TTY and NO_COLOR).

The JSON rendering is the saved-plan document itself (`Plan.to_json()`, documented in
docs/plan-format.md), so `recon show --json plan.json` and `recon plan -out` agree.

Called by: the CLI (`recon plan`, `recon show`), render.plan_markdown.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import click

from reconciler.engine.plan import Plan, PlanFinding, ResourceChange
from reconciler.providers.base import Action, AttributeChange, AttributePath, Safety

SYMBOLS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.FORGET: "x",
    Action.NOOP: "=",
}
"""`=` appears only for adopt entries that change nothing on the platform."""

COLOURS: dict[Action, str] = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.FORGET: "cyan",
    Action.NOOP: "cyan",
}

ADOPT_NOTE = "(adopt: exists on the platform, will be recorded in state)"
FORGET_NOTE = "(forget: removed from recon state, left on the platform)"
ORPHANED_TITLE = "Orphaned (not in manifests; kept: see each reason)"
NO_CHANGES = "No changes. The live estate matches the manifests."
ONE_WAY_VERDICT = "One-way changes: apply needs --allow-one-way."

_SUMMARY_ACTIONS = (
    (Action.CREATE, "to create"),
    (Action.UPDATE, "to update"),
    (Action.REPLACE, "to replace"),
    (Action.DELETE, "to delete"),
    (Action.FORGET, "to forget"),
    (Action.NOOP, "unchanged"),
)


# ---- helpers shared with the Markdown renderer ----------------------------------------


def compact(value: Any) -> str:
    """A value as compact JSON: "7y", 10, true, null, ["a","b"], {"k":1}."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def utc_minute(moment: dt.datetime) -> str:
    """2026-11-22T10:00Z (a naive time is taken to be UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _leaves(value: Any, path: AttributePath) -> list[tuple[AttributePath, Any]]:
    if isinstance(value, Mapping) and value:
        found: list[tuple[AttributePath, Any]] = []
        for key, item in value.items():
            found.extend(_leaves(item, (*path, str(key))))
        return found
    return [(path, value)]


def attribute_lines(change: ResourceChange) -> tuple[AttributeChange, ...]:
    """What to show under a resource: the leaves of `after` for a create, of `before` for a
    delete (nested maps flattened to dotted paths, lists kept whole), else the changed paths."""
    if change.action is Action.CREATE and change.after is not None:
        return tuple(AttributeChange(path, None, value) for path, value in _leaves(change.after, ()) if path)
    if change.action is Action.DELETE and change.before is not None:
        return tuple(AttributeChange(path, value, None) for path, value in _leaves(change.before, ()) if path)
    return change.attributes


def attribute_kind(change: ResourceChange, attribute: AttributeChange) -> str:
    """'+' added, '-' removed, '~' changed (absent values are None)."""
    if change.action is Action.CREATE or (attribute.before is None and attribute.after is not None):
        return "+"
    if change.action is Action.DELETE or (attribute.after is None and attribute.before is not None):
        return "-"
    return "~"


def summary_counts(plan: Plan) -> str:
    """'2 to create, 1 to update, 0 to replace, 1 to delete, 0 to forget, 3 unchanged' and
    ', 1 to adopt', ', 2 orphaned' when non-zero (those two overlap the action counts)."""
    counts = plan.counts()
    parts = [f"{counts[action.value]} {label}" for action, label in _SUMMARY_ACTIONS]
    if counts["adopt"]:
        parts.append(f"{counts['adopt']} to adopt")
    if counts["orphaned"]:
        parts.append(f"{counts['orphaned']} orphaned")
    return ", ".join(parts)


def blocking_reasons(plan: Plan) -> str:
    """'1 forbidden change, 2 compliance errors' (empty when the plan is not blocked)."""
    parts = []
    if plan.forbidden:
        parts.append(plural(len(plan.forbidden), "forbidden change"))
    if plan.blocking_findings:
        parts.append(plural(len(plan.blocking_findings), "compliance error"))
    return ", ".join(parts)


def verdict(plan: Plan) -> str:
    """The one line that says whether and how the plan can be applied ('' when it simply can)."""
    if plan.blocked:
        return f"BLOCKED: {blocking_reasons(plan)} — this plan cannot be applied."
    if plan.one_way:
        return ONE_WAY_VERDICT
    if not plan.has_changes:
        return NO_CHANGES
    return ""


def listed_changes(plan: Plan) -> list[ResourceChange]:
    """The entries shown one by one: those that change the platform or the state."""
    return [c for c in plan.changes if c.changes_something]


def orphaned_noops(plan: Plan) -> list[ResourceChange]:
    return [c for c in plan.changes if c.orphaned and c.action is Action.NOOP and not c.adopt]


def symbol(change: ResourceChange) -> str:
    return SYMBOLS[change.action]


# ---- text ------------------------------------------------------------------------------


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, fg: str | None = None, *, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if self.color else text


def _value_line(kind: str, attribute: AttributeChange) -> str:
    if kind == "+":
        return f"+ {attribute.dotted} = {compact(attribute.after)}"
    if kind == "-":
        return f"- {attribute.dotted} = {compact(attribute.before)}"
    return f"~ {attribute.dotted}: {compact(attribute.before)} -> {compact(attribute.after)}"


_ATTRIBUTE_COLOURS = {"+": "green", "-": "red", "~": "yellow"}


def _change_block(change: ResourceChange, style: _Style) -> list[str]:
    head = f"{symbol(change):>3} {change.address}"
    head = style(head, COLOURS[change.action], bold=True)
    if change.action is Action.FORGET:
        head += f" {FORGET_NOTE}"
    if change.adopt:
        head += f" {ADOPT_NOTE}"
    lines = [head]
    if change.declared_at:
        lines.append(f"    declared at {change.declared_at}")
    if change.reason:
        lines.append(f"    reason: {change.reason}")
    if change.safety is Safety.ONE_WAY:
        because = f"{change.safety_reason} — " if change.safety_reason else ""
        lines.append("    " + style("ONE-WAY", "yellow", bold=True) + f": {because}apply needs --allow-one-way")
    elif change.safety is Safety.FORBIDDEN:
        because = f"{change.safety_reason} — " if change.safety_reason else ""
        lines.append("    " + style("FORBIDDEN", "red", bold=True) + f": {because}this change blocks the plan")
    for attribute in attribute_lines(change):
        kind = attribute_kind(change, attribute)
        lines.append("    " + style(_value_line(kind, attribute), _ATTRIBUTE_COLOURS[kind]))
    return lines


def _finding_line(finding: PlanFinding, style: _Style) -> list[str]:
    fg = "red" if finding.severity == "error" else "yellow"
    label = f"{finding.severity}[{finding.rule_id}]"
    if finding.waived:
        label = f"waived {label}"
        fg = "bright_black"
    where = f" at {finding.location}" if finding.location else ""
    lines = [f"  {style(label, fg, bold=not finding.waived)} {finding.resource}{where}: {finding.message}"]
    if finding.remediation and not finding.waived:
        lines.append(f"      fix: {finding.remediation}")
    return lines


def _header(plan: Plan, listed: list[ResourceChange]) -> list[str]:
    binding = plan.binding
    lines = [
        f'recon plan for target "{binding.target}" (state lineage {binding.lineage}, serial {binding.serial})',
    ]
    times = f"Created {utc_minute(plan.created)}, expires {utc_minute(plan.expires)}."
    flags = [f"--{name}" for name, on in sorted(plan.options.items()) if on]
    if flags:
        times += f" Options: {' '.join(flags)}."
    lines.append(times)
    used = [action for action in SYMBOLS if any(c.action is action for c in listed)]
    if used:
        names = {Action.NOOP: "adopt only"}
        legend = ", ".join(f"{SYMBOLS[a]} {names.get(a, a.value)}" for a in used)
        lines.append(f"Symbols: {legend}")
    return lines


def render_plan_text(plan: Plan, *, color: bool) -> str:
    """The plan as Terraform-like text; ANSI colours only when `color` is True."""
    style = _Style(color)
    listed = listed_changes(plan)
    lines = _header(plan, listed)
    for change in listed:
        lines.append("")
        lines.extend(_change_block(change, style))
    orphans = orphaned_noops(plan)
    if orphans:
        lines.extend(["", ORPHANED_TITLE + ":"])
        for change in orphans:
            reason = f": {change.reason}" if change.reason else ""
            lines.append(f"    {change.address}{reason}")
    if plan.findings:
        lines.extend(["", "Findings:"])
        for finding in plan.findings:
            lines.extend(_finding_line(finding, style))
    lines.extend(["", f"Plan: {summary_counts(plan)}."])
    final = verdict(plan)
    if plan.blocked:
        lines.append(style(final, "red", bold=True))
    elif plan.one_way:
        lines.append(style(final, "yellow", bold=True))
    elif final:
        lines.append(style(final, "green"))
    return "\n".join(lines) + "\n"


# ---- JSON ------------------------------------------------------------------------------


def render_plan_json(plan: Plan) -> str:
    """The saved-plan document (docs/plan-format.md), digest included."""
    return json.dumps(plan.to_json(), indent=2) + "\n"
