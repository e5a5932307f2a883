"""A plan as a pull-request comment (GitHub-flavoured Markdown), rendered from
templates/plan.md.j2: a status line, the findings table, one collapsible <details> block per
changing resource with a ```diff of its attributes, the orphaned resources, the apply
command (or, for a blocked plan, why it cannot be applied) and a footer with the counts and
the plan's expiry.

The output is deterministic: the same plan renders the same bytes (no clock, no ordering
other than the plan's). Values from manifests and the platform are escaped for where they
land: `|` in table cells, HTML in <summary>, fence length in code blocks.

Also the shared jinja2 environment for render.drift's Markdown.

Called by: the CLI (`recon plan --format markdown`, `recon show --format markdown`),
render.drift (the environment and the Markdown escapes).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import escape

from reconciler.engine.plan import Plan, ResourceChange
from reconciler.providers.base import Safety
from reconciler.render.plan_text import (
    ADOPT_NOTE,
    FORGET_NOTE,
    ORPHANED_TITLE,
    attribute_kind,
    attribute_lines,
    blocking_reasons,
    compact,
    listed_changes,
    orphaned_noops,
    plural,
    summary_counts,
    symbol,
    utc_minute,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"


# ---- Markdown escapes ------------------------------------------------------------------


def cell(value: object) -> str:
    """Text safe inside a GFM table cell: pipes escaped, line breaks as <br>."""
    text = str(value).replace("\r\n", "\n").replace("\n", "<br>")
    # a backslash run before a pipe is doubled so that the pipe's own escape stays odd
    return re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text)


def code(value: object) -> str:
    """An inline code span that survives backticks in the value."""
    text = str(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fence(body: str) -> str:
    """A code fence longer than any backtick run in `body`."""
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    return "`" * (longest + 1)


def html(value: object) -> str:
    return str(escape(str(value)))


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = cell
    env.filters["code"] = code
    env.filters["html"] = html
    return env


# ---- the plan --------------------------------------------------------------------------


def _diff_lines(change: ResourceChange) -> list[str]:
    lines = []
    for attribute in attribute_lines(change):
        kind = attribute_kind(change, attribute)
        if kind in "-~":
            lines.append(f"- {attribute.dotted} = {compact(attribute.before)}")
        if kind in "+~":
            lines.append(f"+ {attribute.dotted} = {compact(attribute.after)}")
    return lines


def _change_context(change: ResourceChange) -> dict[str, Any]:
    what = [] if change.action.value == "no-op" else [change.action.value]
    if change.adopt:
        what.append("adopt")
    notes = []
    if change.action.value == "forget":
        notes.append(FORGET_NOTE.strip("()").capitalize() + ".")
    if change.adopt:
        notes.append(ADOPT_NOTE.strip("()").capitalize() + ".")
    if change.safety is Safety.ONE_WAY:
        notes.append(f"**One-way**: {change.safety_reason or 'cannot be undone'} — apply needs `--allow-one-way`.")
    elif change.safety is Safety.FORBIDDEN:
        notes.append(f"**Forbidden**: {change.safety_reason or 'must never happen'} — this change blocks the plan.")
    diff = "\n".join(_diff_lines(change))
    return {
        "summary": f"{symbol(change)} {change.address} — {', '.join(what)} ({change.safety.value})",
        "declared_at": change.declared_at or "",
        "reason": change.reason,
        "notes": notes,
        "diff": diff,
        "fence": fence(diff),
    }


def _status(plan: Plan) -> str:
    if plan.blocked:
        return ":no_entry: blocked"
    if plan.one_way:
        return ":warning: one-way changes (apply needs `--allow-one-way`)"
    if plan.has_changes:
        return ":white_check_mark: ready to apply"
    return ":white_check_mark: no changes"


_SEVERITY_ORDER = {"error": 0, "warning": 1}


def _findings_count(plan: Plan) -> str:
    if not plan.findings:
        return "no findings"
    by_severity = Counter(f.severity for f in plan.findings if not f.waived)
    parts = [
        plural(n, severity)
        for severity, n in sorted(by_severity.items(), key=lambda item: (_SEVERITY_ORDER.get(item[0], 2), item[0]))
    ]
    waived = sum(f.waived for f in plan.findings)
    if waived:
        parts.append(f"{waived} waived")
    return f"{plural(len(plan.findings), 'finding')} ({', '.join(parts)})"


def _blocked_context(plan: Plan) -> list[str]:
    reasons = [
        f"Forbidden: `{c.address}` — {c.safety_reason or c.reason or 'must never happen'}" for c in plan.forbidden
    ]
    reasons.extend(f"Compliance error `{f.rule_id}` on `{f.resource}`: {f.message}" for f in plan.blocking_findings)
    return reasons


def render_plan_markdown(plan: Plan, *, apply_command: str) -> str:
    """The plan as a pull-request comment; `apply_command` (e.g. "recon apply plan.json") is
    shown when the plan can be applied."""
    changes = listed_changes(plan)
    findings = [
        {
            "severity": f"{f.severity} (waived)" if f.waived else f.severity,
            "rule": f.rule_id,
            "resource": f.resource,
            "location": f.location,
            "message": f.message,
        }
        for f in plan.findings
    ]
    context = {
        "target": plan.binding.target,
        "counts": summary_counts(plan),
        "status": _status(plan),
        "findings": findings,
        "changes": [_change_context(c) for c in changes],
        "orphaned_title": ORPHANED_TITLE,
        "orphans": [{"address": c.address, "reason": c.reason} for c in orphaned_noops(plan)],
        "blocked": plan.blocked,
        "blocking": blocking_reasons(plan),
        "blocked_reasons": _blocked_context(plan),
        "has_changes": plan.has_changes,
        "one_way": [c.address for c in plan.one_way],
        "apply_command": apply_command,
        "apply_fence": fence(apply_command),
        "resources": plural(len(plan.changes), "resource"),
        "findings_count": _findings_count(plan),
        "expires": utc_minute(plan.expires),
    }
    return environment().get_template("plan.md.j2").render(context)
