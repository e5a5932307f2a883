"""`recon drift` results as text (terminal), JSON (tools, versioned) and Markdown (an alert
people act on: a chat message, an issue, a pull-request comment; templates/drift.md.j2).

Drift is what changed on the platform outside recon (sides live, live-deleted, both); a
pending change (the manifests changed but were not applied, or a resource was declared and
never applied) is listed separately and is not drift. Each drifted resource says who changed
it when the platform's audit trail knows, and both ways out: revert (`recon apply`
re-applies the manifests) or accept (edit the manifest to the live value, shown).

The JSON format (`format_version` 1) is documented in docs/plan-format.md; fields are only
ever added within a format version.

Called by: the CLI (`recon drift`), scheduled drift checks that post alerts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from reconciler import __version__
from reconciler.engine.reports import DriftItem, DriftReport, DriftSide
from reconciler.providers.base import AttributeChange
from reconciler.render.plan_markdown import code, environment
from reconciler.render.plan_text import compact, plural, utc_minute

FORMAT_VERSION = 1

DESCRIPTIONS: dict[DriftSide, str] = {
    DriftSide.LIVE: "changed on the platform, outside recon",
    DriftSide.LIVE_DELETED: "deleted on the platform, outside recon",
    DriftSide.BOTH: "changed on the platform, outside recon, and in the manifests",
    DriftSide.MANIFESTS: "the manifests changed and were not applied yet",
    DriftSide.UNMANAGED: "declared in the manifests, never applied (a pending create)",
}

SYMBOLS: dict[DriftSide, str] = {
    DriftSide.LIVE: "~",
    DriftSide.LIVE_DELETED: "-",
    DriftSide.BOTH: "!",
    DriftSide.MANIFESTS: "~",
    DriftSide.UNMANAGED: "+",
}

REMEDY = (
    "To revert the drift, run `recon apply` (it re-applies the manifests). To accept it, edit "
    "the manifests to the live values shown and run `recon plan`."
)
PENDING_NEXT = "run `recon plan`, then `recon apply`"


# ---- JSON ------------------------------------------------------------------------------


def _changes_json(changes: tuple[AttributeChange, ...]) -> list[dict[str, Any]]:
    return [{"path": c.dotted, "segments": list(c.path), "before": c.before, "after": c.after} for c in changes]


def drift_counts(report: DriftReport) -> dict[str, int]:
    counts = {
        "resources_checked": report.resources_checked,
        "drifted": len(report.drifted),
        "pending": len(report.pending),
    }
    for side in DriftSide:
        counts[side.value] = sum(item.side is side for item in report.items)
    return counts


def render_drift_json(report: DriftReport) -> str:
    """The drift report as the versioned JSON document of docs/plan-format.md."""
    document = {
        "format_version": FORMAT_VERSION,
        "recon_version": __version__,
        "target": report.target,
        "checked_at": report.checked_at.isoformat(),
        "lineage": report.lineage,
        "serial": report.serial,
        "has_drift": report.has_drift,
        "counts": drift_counts(report),
        "items": [
            {
                "address": item.address,
                "kind": item.kind,
                "name": item.name,
                "side": item.side.value,
                "is_drift": item.is_drift,
                "changed_by": item.changed_by,
                "changed_at": item.changed_at,
                "changed_via": item.changed_via,
                "declared_at": item.declared_at,
                "live_changes": _changes_json(item.live_changes),
                "manifest_changes": _changes_json(item.manifest_changes),
            }
            for item in report.items
        ],
    }
    return json.dumps(document, indent=2) + "\n"


# ---- text ------------------------------------------------------------------------------


def _when(item: DriftItem) -> str:
    """' at 2026-11-21 10:02:03 UTC via admin-console' from the audit trail, when known."""
    text = ""
    if item.changed_at:
        text += f" at {item.changed_at.replace('T', ' ').removesuffix('Z').split('.')[0]} UTC"
    if item.changed_via:
        text += f" via {item.changed_via}"
    return text


def _change_line(change: AttributeChange) -> str:
    return f"~ {change.dotted}: {compact(change.before)} -> {compact(change.after)}"


def _item_lines(item: DriftItem, style: Callable[[str], str]) -> list[str]:
    head = f"  {SYMBOLS[item.side]} {item.address}: {DESCRIPTIONS[item.side]}"
    if item.changed_by and item.side is not DriftSide.MANIFESTS and item.side is not DriftSide.UNMANAGED:
        head += f" (by {item.changed_by}{_when(item)})"
    lines = [style(head)]
    if item.declared_at:
        lines.append(f"      declared at {item.declared_at}")
    both = item.side is DriftSide.BOTH
    if item.live_changes:
        if both:
            lines.append("      live (recon applied -> platform now):")
        lines.extend(f"      {_change_line(c)}" for c in item.live_changes)
    if item.manifest_changes:
        if both:
            lines.append("      manifests (recon applied -> manifests now):")
        lines.extend(f"      {_change_line(c)}" for c in item.manifest_changes)
    return lines


def render_drift_text(report: DriftReport, *, color: bool) -> str:
    """The drift report for a terminal; ANSI colours only when `color` is True."""

    def styler(fg: str, bold: bool = False) -> Callable[[str], str]:
        return lambda text: click.style(text, fg=fg, bold=bold) if color else text

    drifted, pending = report.drifted, report.pending
    lines = [
        f'recon drift for target "{report.target}", checked {utc_minute(report.checked_at)} '
        f"(state lineage {report.lineage}, serial {report.serial})",
        f"{plural(report.resources_checked, 'resource')} checked: {len(drifted)} drifted, {len(pending)} pending.",
    ]
    if drifted:
        lines.extend(["", "Drift (changed outside recon):"])
        for item in drifted:
            lines.extend(_item_lines(item, styler("red" if item.side is DriftSide.LIVE_DELETED else "yellow", True)))
    if pending:
        lines.extend(["", f"Pending changes, not drift ({PENDING_NEXT}):"])
        for item in pending:
            lines.extend(_item_lines(item, styler("cyan")))
    lines.append("")
    if drifted:
        lines.append(styler("red", True)(f"Drift: {plural(len(drifted), 'resource')} changed outside recon."))
        lines.append(REMEDY)
    else:
        lines.append(styler("green")("No drift: the live estate matches what recon last applied."))
    return "\n".join(lines) + "\n"


# ---- Markdown --------------------------------------------------------------------------


def _rows(changes: tuple[AttributeChange, ...]) -> list[dict[str, str]]:
    return [
        {"path": code(c.dotted), "before": code(compact(c.before)), "after": code(compact(c.after))} for c in changes
    ]


def _accept_steps(item: DriftItem) -> list[str]:
    """What to write in the manifest to make the live values the declared ones."""
    steps = []
    for change in item.live_changes:
        if change.after is None:
            steps.append(f"remove {code(change.dotted)}")
        else:
            steps.append(f"set {code(change.dotted)} to {code(compact(change.after))}")
    return steps


def _drift_context(item: DriftItem) -> dict[str, Any]:
    where = f" (declared at {code(item.declared_at)})" if item.declared_at else ""
    manifest = f"the manifest{where}"
    steps = "; ".join(_accept_steps(item)) or "make it match the live object"
    if item.side is DriftSide.LIVE_DELETED:
        revert = "`recon apply` creates it again from the manifests."
        accept = f"remove its document from {manifest}, then run `recon plan --prune`."
    elif item.side is DriftSide.BOTH:
        revert = "`recon apply` applies the manifests as they are now, overwriting the live change."
        accept = f"edit {manifest}: {steps}, then run `recon plan`."
    else:
        revert = "`recon apply` re-applies the manifests, setting the values back."
        accept = f"edit {manifest}: {steps}, then run `recon plan`."
    if item.changed_by:
        who = f"Changed outside recon by **{item.changed_by}**{_when(item)}."
    else:
        who = "Changed outside recon; the platform's audit trail does not say by whom."
    if item.side is DriftSide.LIVE_DELETED:
        who = who.replace("Changed", "Deleted", 1)
    return {
        "address": code(item.address),
        "what": DESCRIPTIONS[item.side],
        "who": who,
        "live": _rows(item.live_changes),
        "manifests": _rows(item.manifest_changes),
        "revert": revert,
        "accept": accept,
    }


def _pending_context(item: DriftItem) -> dict[str, Any]:
    return {
        "address": code(item.address),
        "what": DESCRIPTIONS[item.side],
        "declared_at": code(item.declared_at) if item.declared_at else "",
        "changes": [
            f"{code(c.dotted)}: {code(compact(c.before))} → {code(compact(c.after))}" for c in item.manifest_changes
        ],
    }


def render_drift_markdown(report: DriftReport, *, estate_name: str) -> str:
    """The drift report as an alert naming `estate_name` (e.g. "energy-desk-eu")."""
    drifted, pending = report.drifted, report.pending
    context = {
        "estate": estate_name,
        "target": code(report.target),
        "checked_at": utc_minute(report.checked_at),
        "lineage": code(report.lineage),
        "serial": report.serial,
        "checked": plural(report.resources_checked, "resource"),
        "drifted_count": plural(len(drifted), "resource"),
        "pending_count": plural(len(pending), "pending change"),
        "drifted": [_drift_context(item) for item in drifted],
        "pending": [_pending_context(item) for item in pending],
        "pending_next": PENDING_NEXT,
    }
    return environment().get_template("drift.md.j2").render(context)
