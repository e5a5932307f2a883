"""The end of `recon apply` for a terminal: one line per resource that failed or was skipped
(with its message), the `Apply complete/failed: …` count line and, when anything did not
succeed, what to do next. Succeeded resources are not repeated (progress was shown live).

Called by: the CLI (`recon apply`).
"""

from __future__ import annotations

import click

from reconciler.engine.reports import ApplyResult, Outcome, ResourceOutcome

NEXT_STEP = "Run `recon plan` to see what remains; the state records every completed step."
SKIPPED_DEFAULT = "not attempted: a resource it depends on failed, or the run was interrupted"


def _line(outcome: ResourceOutcome, label: str, fg: str, color: bool) -> str:
    tag = click.style(label, fg=fg, bold=True) if color else label
    message = outcome.message or (SKIPPED_DEFAULT if outcome.outcome is Outcome.SKIPPED else "no message")
    return f"  {tag} {outcome.action.value} {outcome.address}: {message}"


def render_apply_text(result: ApplyResult, *, color: bool) -> str:
    """Failures and skips, then the count line; ANSI colours only when `color` is True."""
    lines = [_line(o, "failed ", "red", color) for o in result.of(Outcome.FAILED)]
    lines.extend(_line(o, "skipped", "yellow", color) for o in result.of(Outcome.SKIPPED))
    counts = result.counts()
    tally = (
        f"{counts[Outcome.SUCCEEDED.value]} succeeded, {counts[Outcome.FAILED.value]} failed, "
        f"{counts[Outcome.SKIPPED.value]} skipped."
    )
    if counts[Outcome.FAILED.value]:
        verdict, fg = f"Apply failed: {tally}", "red"
    elif counts[Outcome.SKIPPED.value]:
        verdict, fg = f"Apply incomplete: {tally}", "yellow"
    else:
        verdict, fg = f"Apply complete: {tally}", "green"
    lines.append(click.style(verdict, fg=fg, bold=True) if color else verdict)
    if not result.ok:
        lines.append(NEXT_STEP)
    return "\n".join(lines) + "\n"
