"""Compliance figures from the matcher's verdict counters: the dashboard's "compliant %" and
its rollup from traders to groups (desks, sites, business lines).

compliance % = verified / (verified + partial + not_recorded). Exempt calls (intentionally not
recorded) and pending ones (grace not over yet) are left out of both sides; recordings without
a CDR are a separate, minor figure (the call was recorded, the switch just did not report it).

Pure functions on `Counter[Verdict]` (or any mapping Verdict -> int). Called by
reconciler.runtime.verification.matcher (`MatchResult.compliance`), reports, the CLI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from reconciler.runtime.verification.model import Verdict

COUNTED: tuple[Verdict, ...] = (Verdict.VERIFIED, Verdict.PARTIAL, Verdict.NOT_RECORDED)
"""The verdicts the compliance ratio is computed over."""

UNASSIGNED = "(unassigned)"
"""The group of a trader the mapping does not know (so nothing silently drops out)."""


def compliance(counters: Mapping[Verdict, int]) -> float | None:
    """verified / (verified + partial + not_recorded), in [0, 1]; None when nothing counts."""
    verified = counters.get(Verdict.VERIFIED, 0)
    denominator = sum(counters.get(verdict, 0) for verdict in COUNTED)
    if denominator == 0:
        return None
    return verified / denominator


def rollup(
    per_trader: Mapping[str, Mapping[Verdict, int]],
    groups: Mapping[str, str],
    *,
    unassigned: str = UNASSIGNED,
) -> dict[str, Counter[Verdict]]:
    """Sum per-trader counters per group (`groups`: trader id -> group, e.g. desk).

    Traders missing from `groups` are summed under `unassigned`. Groups come out sorted by name;
    apply `compliance` to each value for the per-group percentage.
    """
    summed: dict[str, Counter[Verdict]] = {}
    for trader, counters in per_trader.items():
        group = groups.get(trader, unassigned)
        total = summed.get(group)
        if total is None:
            total = summed[group] = Counter()
        total.update(counters)
    return {group: summed[group] for group in sorted(summed)}
