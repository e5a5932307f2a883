"""Clock skew between each collector's switch and the recording platform, estimated from data.

The switch (via its collector) and the recorder stamp the same call with their own clocks. When
those clocks drift apart by more than the start tolerance, no CDR matches its recording and
every call looks unrecorded. `estimate_skew` measures the drift per collector so `match` can
put CDR times on the recorder's clock (`skew_ms`: milliseconds to add to a CDR's times).

Method: for each CDR, the recording of the same trader (with a compatible turret/line, as in
matching) whose start is nearest to the CDR's start, if within `window_ms`, gives one offset
`rec.start_ms - cdr.start_ms`. Per collector, the estimate is the median (low median, so an
int that occurred) of its offsets. The median ignores the minority of pairs that met the wrong
call or an orphan recording, as long as most calls are recorded and calls of one trader rarely
start within the skew of each other. Collectors with fewer than `min_pairs` offsets get 0 (too
little evidence to move a clock). Pure; O(n log n).

Called by: reconciler.runtime.verification (service, reports), tests, bench/bench_verify.py.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Iterable

from reconciler.runtime.verification.model import Cdr, Recording

_Rec = tuple[int, str | None, str | None]


def estimate_skew(
    cdrs: Iterable[Cdr],
    recordings: Iterable[Recording],
    *,
    window_ms: int = 60_000,
    min_pairs: int = 20,
) -> dict[str, int]:
    """Per collector of `cdrs`: the median offset recorder - switch in ms (0 without evidence)."""
    by_trader: dict[str, list[_Rec]] = {}
    for rec in recordings:
        by_trader.setdefault(rec.trader_id, []).append((rec.start_ms, rec.turret, rec.line))
    starts: dict[str, list[int]] = {}
    for trader, recs in by_trader.items():
        recs.sort(key=lambda item: item[0])
        starts[trader] = [item[0] for item in recs]

    offsets: dict[str, list[int]] = {}
    for cdr in cdrs:
        found = offsets.setdefault(cdr.collector, [])
        candidates = by_trader.get(cdr.trader_id)
        if candidates is None:
            continue
        offset = _nearest(cdr, candidates, starts[cdr.trader_id], window_ms)
        if offset is not None:
            found.append(offset)
    return {
        collector: statistics.median_low(found) if len(found) >= min_pairs and found else 0
        for collector, found in sorted(offsets.items())
    }


def _nearest(cdr: Cdr, recs: list[_Rec], starts: list[int], window_ms: int) -> int | None:
    """rec.start - cdr.start of the nearest compatible recording within the window, else None.

    Walks outwards from the insertion point, always taking the nearer side (the later one on a
    tie), so the first compatible recording met is the nearest.
    """
    right = bisect_left(starts, cdr.start_ms)
    left = right - 1
    while True:
        left_gap = cdr.start_ms - starts[left] if left >= 0 else window_ms + 1
        right_gap = starts[right] - cdr.start_ms if right < len(starts) else window_ms + 1
        if min(left_gap, right_gap) > window_ms:
            return None
        if right_gap <= left_gap:
            index, right = right, right + 1
        else:
            index, left = left, left - 1
        start, turret, line = recs[index]
        if (turret is None or turret == cdr.turret) and (line is None or line == cdr.line):
            return start - cdr.start_ms
