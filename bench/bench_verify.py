"""Benchmark: the capture-verification matcher (`reconciler.runtime.verification.matcher.match`)
on generated call days of 250k, 500k and 1M CDRs.

What it generates, deterministically (random.Random(seed)), for N CDRs:

- 500 traders over 4 collectors (trader k on collector k % 4); the collectors' clocks are off
  the recorder's by 0, +1.5 s, -3 s and +7 s, and `match` gets those skews as `skew_ms`;
- per trader, N / 500 calls whose starts are 10 s to 5 min apart (calls of one trader overlap
  when a call outlasts the gap: a trader on several lines), 5 s to 10 min long, on one of 4
  lines of the trader's turret;
- a recording per call, starting within ±1 s of the call (on the recorder's clock) and lasting
  between 0.5 s less and 1.5 s more than the call; half the recordings carry turret and line;
- planted, exactly: 1 % of calls without a recording (expected NOT_RECORDED), 1 % with a
  recording shorter than the call by more than the duration tolerance (PARTIAL), and 1 % of
  recordings without a call (RECORDED_WITHOUT_CDR), placed halfway between two of the trader's
  call starts. So there are N CDRs and N recordings. Recordings are shuffled (the platform's
  order is not the switch's). Tolerances: start 2 s, duration 1 s, grace 5 min; now is well
  after the last call, so nothing is pending.

What it measures, each size in a fresh child process (so each size's peak is its own):

- gen_s       building the Cdr and Recording objects (not part of matching);
- match_s     the wall time of one `match` call: the median of RUNS calls on the same inputs
              (match_min_s: the fastest; the machine is shared, so the spread is shown);
- cdrs_per_s  N / match_s;
- peak_mb     resource.getrusage(RUSAGE_SELF).ru_maxrss of the whole child process (the
              interpreter, the generated inputs and the matcher's working set), in MB;
- exact       whether the findings' ids are exactly the planted sets, and everything else is
              verified (the run fails when they are not).

Targets (issue 7): match of 1M under 10 s, peak under 1.5 GB; time growing about linearly
(the ratio match_s(1M) / match_s(250k) is printed; linear is 4).

Output: a table, then one line

    BENCH verify cdrs=1000000 match_s=X cdrs_per_s=X peak_mb=X growth_250k_to_1m=Xx exact=yes|no

Run: `.venv/bin/python bench/bench_verify.py [--sizes 250000,500000,1000000] [--seed 7]`.
Exit 0 when exact and the targets are met, 2 when a target is missed, 1 when not exact.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MATCH_TARGET_S = 10.0
PEAK_TARGET_MB = 1500.0
TRADERS = 500
RUNS = 3  # match runs per size (same inputs); match_s is their median
SKEWS = {"ldn-a": 0, "ldn-b": 1_500, "nyc-a": -3_000, "nyc-b": 7_000}
DAY_MS = 1_790_000_000_000  # a fixed epoch-ms origin (2026-09-21), no clock read


def generate(n: int, seed: int) -> tuple[list[Any], list[Any], dict[str, set[str]]]:
    """N CDRs, N recordings, and the planted ids per expected verdict."""
    from reconciler.runtime.verification.model import Cdr, Recording  # noqa: PLC0415

    rng = random.Random(seed)
    collectors = list(SKEWS)
    per_trader = n // TRADERS
    missing = set(rng.sample(range(n), n // 100))
    rest = [i for i in range(n) if i not in missing]
    partial = set(rng.sample(rest, n // 100))
    orphan_at = sorted(rng.sample(range(n), n // 100))  # an orphan recording after call i
    orphan_set = set(orphan_at)
    cdrs: list[Any] = []
    recordings: list[Any] = []
    planted: dict[str, set[str]] = {"not_recorded": set(), "partial": set(), "recorded_without_cdr": set()}
    rand, randint = rng.random, rng.randint
    i = 0
    for t in range(TRADERS):
        trader = f"T-{t:04d}"
        turret = f"TUR-{t:04d}"
        collector = collectors[t % len(collectors)]
        skew = SKEWS[collector]
        count = per_trader + (1 if t < n % TRADERS else 0)
        start = DAY_MS + randint(0, 3_600_000)
        for _ in range(count):
            line = f"L{randint(1, 4)}"
            duration = randint(5_000, 600_000)
            cdr_id = f"{collector}:{i:09d}"
            cdrs.append(Cdr(cdr_id, collector, trader, turret, line, "out", start, duration))
            gap = randint(10_000, 300_000)
            if i not in missing:
                rec_start = start + skew + randint(-1_000, 1_000)
                if i in partial:
                    rec_duration = duration - randint(1_001, duration // 2)
                    planted["partial"].add(cdr_id)
                else:
                    rec_duration = duration + randint(-500, 1_500)
                carry = rand() < 0.5
                recordings.append(
                    Recording(
                        f"R{i:09d}", f"C{i:09d}", trader, rec_start, rec_duration,
                        turret if carry else None, line if carry else None,
                    )
                )  # fmt: skip
            else:
                planted["not_recorded"].add(cdr_id)
            if i in orphan_set:
                # Halfway to the next call start: at least 5 s from any call start of this trader.
                orphan_id = f"X{i:09d}"
                recordings.append(Recording(orphan_id, f"CX{i:09d}", trader, start + skew + gap // 2, 30_000))
                planted["recorded_without_cdr"].add(orphan_id)
            start += gap
            i += 1
    rng.shuffle(recordings)
    return cdrs, recordings, planted


def run_child(n: int, seed: int) -> dict[str, Any]:
    from reconciler.runtime.verification.matcher import match  # noqa: PLC0415
    from reconciler.runtime.verification.model import Tolerances, Verdict  # noqa: PLC0415

    started = time.perf_counter()
    cdrs, recordings, planted = generate(n, seed)
    generated = time.perf_counter()
    now_ms = max(c.end_ms for c in cdrs) + 3_600_000
    tolerances = Tolerances(start_ms=2_000, duration_ms=1_000, grace_ms=300_000)
    times: list[float] = []
    for _ in range(RUNS):
        result = None  # free the previous run's result first: peak is one run's
        match_started = time.perf_counter()
        result = match(cdrs, recordings, tolerances, now_ms=now_ms, skew_ms=SKEWS)
        times.append(time.perf_counter() - match_started)
    assert result is not None
    match_s = statistics.median(times)
    found: dict[str, set[str]] = {verdict: set() for verdict in planted}
    for finding in result.findings:
        verdict, _, ident = finding.key.partition(":")
        found.setdefault(verdict, set()).add(ident)
    exact = (
        found == planted
        and len(result.verified_cdr_ids) == n - len(planted["not_recorded"]) - len(planted["partial"])
        and result.counts[Verdict.VERIFIED] == len(result.verified_cdr_ids)
        and not result.pending_recording_ids
    )
    return {
        "cdrs": len(cdrs),
        "recordings": len(recordings),
        "gen_s": generated - started,
        "match_s": match_s,
        "match_min_s": min(times),
        "cdrs_per_s": n / match_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "findings": len(result.findings),
        "compliance_pct": 100 * (result.compliance or 0.0),
        "exact": exact,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="250000,500000,1000000", help="comma-separated CDR counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", type=int, help="internal: run one size and print JSON")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.seed)))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    figures: dict[int, dict[str, Any]] = {}
    for n in sizes:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--seed", str(args.seed)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        figures[n] = json.loads(done.stdout.strip().splitlines()[-1])
    columns = [
        "cdrs",
        "recordings",
        "gen_s",
        "match_s",
        "match_min_s",
        "cdrs_per_s",
        "peak_mb",
        "findings",
        "compliance_pct",
        "exact",
    ]
    print("each size in a fresh child process; peak_mb = ru_maxrss of that whole process")
    print(" ".join(f"{c:>14}" for c in columns))
    for row in figures.values():
        print(" ".join(f"{row[c]:>14.3f}" if isinstance(row[c], float) else f"{row[c]!s:>14}" for c in columns))
    small, big = figures[sizes[0]], figures[sizes[-1]]
    growth = big["match_s"] / small["match_s"] if small["match_s"] else float("inf")
    print(
        f"match time growth {sizes[0]} -> {sizes[-1]} CDRs: {growth:.2f}x (linear would be {sizes[-1] / sizes[0]:.2f}x)"
    )
    exact = all(row["exact"] for row in figures.values())
    print(
        f"BENCH verify cdrs={big['cdrs']} match_s={big['match_s']:.3f} cdrs_per_s={big['cdrs_per_s']:.0f} "
        f"peak_mb={big['peak_mb']:.0f} growth_{_short(sizes[0])}_to_{_short(sizes[-1])}={growth:.2f}x "
        f"exact={'yes' if exact else 'no'}"
    )
    if not exact:
        return 1
    return 0 if big["match_s"] < MATCH_TARGET_S and big["peak_mb"] < PEAK_TARGET_MB else 2


def _short(n: int) -> str:
    """250000 -> 250k, 1000000 -> 1m."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


if __name__ == "__main__":
    sys.exit(main())
