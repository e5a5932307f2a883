"""Benchmark: the plan/apply engine on the fake provider with zero latency.

What it measures, for a generated bank-sized estate (the generator of bench_load.py) of
2,500 and 10,000 resources, each size in a fresh child process:

- plan_s      what `recon plan` costs without interpreter start-up: load + render + validate
              + rule packs, then observe (one list call per kind) and decide, all resources
              to create (empty platform, empty state);
- engine_s    the engine's share of plan_s (observe + diff + classify + plan data);
- apply_s     `apply PLANFILE` of that plan: planning again to check it still holds, then 10,000 creates through the dependency scheduler
              (parallelism 10), an intent and a result journaled to state per resource,
              compaction at the end (LocalBackend on the temporary folder's disk);
- noop_plan_s plan again right after apply (every resource observed and compared; no change);
- save_s      writing the plan file (plan.dumps()).

Each size runs RUNS times in fresh child processes; the table shows medians (peak RSS: the
maximum). Targets (issue 3): plan of 10,000 under 3 s, apply of 10,000 creates under 10 s, and apply
time growing linearly: the ratio apply_s(10,000) / apply_s(2,500) is printed and should be
near 4 (O(n²) would be near 16).

Output: a table, then one line

    BENCH engine resources=10000 plan_s=X engine_s=X apply_s=X noop_plan_s=X
    apply_ratio_10000_2500=X plan_target_s=3 apply_target_s=10 ok=true|false

Run: `.venv/bin/python bench/bench_engine.py` (or `make bench`). Exit 0 when the targets
are met, 2 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load

PLAN_TARGET_S = 3.0
APPLY_TARGET_S = 10.0
SIZES = ((2500, 50), (10000, 200))
RUNS = 3  # each size runs this many times in fresh processes; figures are medians


def run_child(resources: int, files: int) -> dict[str, Any]:
    from reconciler.engine.apply import apply_checked  # noqa: PLC0415
    from reconciler.engine.plan import Plan  # noqa: PLC0415
    from reconciler.engine.planner import PlanOptions, make_plan  # noqa: PLC0415
    from reconciler.engine.workspace import open_workspace  # noqa: PLC0415
    from reconciler.state.local import LocalBackend  # noqa: PLC0415
    from reconciler.testing import FakeStore, fake_providers  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="recon-bench-engine-") as folder:
        root = Path(folder)
        estate_dir = root / "estate"
        estate_dir.mkdir()
        bench_load.write_estate(estate_dir, bench_load.Plan.make(resources, files))
        store = FakeStore()
        providers = fake_providers(store)
        backend = LocalBackend(root / "state" / "state.json")
        now = dt.datetime.now(dt.UTC)

        started = time.perf_counter()
        ws = open_workspace([str(estate_dir)], {}, today=bench_load.ESTATE_DATE)
        loaded = time.perf_counter()
        options = PlanOptions(target=ws.target)

        def plan_now() -> Plan:
            return asyncio.run(
                make_plan(
                    ws.estate, ws.evaluation, backend.read(), providers, options,
                    manifest_digest=ws.manifest_digest, now=now,
                )
            )  # fmt: skip

        plan = plan_now()
        planned = time.perf_counter()
        text = plan.dumps()
        saved = time.perf_counter()

        with backend.lock("apply", 0) as session:
            apply_started = time.perf_counter()
            result = asyncio.run(apply_checked(plan, ws, session, providers, now=now, allow_one_way=True))
        applied = time.perf_counter()

        replan_started = time.perf_counter()
        again = plan_now()
        replanned = time.perf_counter()
        return {
            "resources": len(ws.estate.resources),
            "managed": len(plan.changes),
            "creates": plan.counts()["create"],
            "succeeded": result.counts()["succeeded"],
            "load_s": loaded - started,
            "engine_s": planned - loaded,
            "plan_s": planned - started,
            "save_s": saved - planned,
            "plan_file_mb": len(text) / 1e6,
            "apply_s": applied - apply_started,
            "noop_plan_s": replanned - replan_started,
            "noop_changes": sum(c.changes_something for c in again.changes),
            "state_mb": (root / "state" / "state.json").stat().st_size / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, type=int, metavar=("RESOURCES", "FILES"), help="internal")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(*args.child)))
        return 0
    figures: dict[int, dict[str, Any]] = {}
    for resources, files in SIZES:
        runs = []
        for _ in range(RUNS):
            command = [sys.executable, str(Path(__file__).resolve()), "--child", str(resources), str(files)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stdout, done.stderr, file=sys.stderr)
                return 1
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        figures[resources] = {
            key: statistics.median(run[key] for run in runs) if isinstance(runs[0][key], float) else runs[0][key]
            for key in runs[0]
        }
        figures[resources]["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    columns = [
        "resources",
        "managed",
        "load_s",
        "engine_s",
        "plan_s",
        "save_s",
        "apply_s",
        "noop_plan_s",
        "state_mb",
        "peak_rss_mb",
    ]
    print(" ".join(f"{c:>12}" for c in columns))
    for row in figures.values():
        print(" ".join(f"{row[c]:>12.3f}" if isinstance(row[c], float) else f"{row[c]:>12}" for c in columns))
    big, small = figures[SIZES[-1][0]], figures[SIZES[0][0]]
    ratio = big["apply_s"] / small["apply_s"] if small["apply_s"] else float("inf")
    size_ratio = big["managed"] / small["managed"]
    print(
        f"apply time ratio {big['managed']}/{small['managed']} resources: {ratio:.2f} (linear would be {size_ratio:.2f})"
    )
    ok = (
        big["plan_s"] < PLAN_TARGET_S
        and big["apply_s"] < APPLY_TARGET_S
        and ratio < size_ratio * 1.5
        and big["noop_changes"] == 0
        and big["succeeded"] == big["managed"]
    )
    print(
        f"BENCH engine resources={big['resources']} plan_s={big['plan_s']:.3f} engine_s={big['engine_s']:.3f} "
        f"apply_s={big['apply_s']:.3f} noop_plan_s={big['noop_plan_s']:.3f} "
        f"apply_ratio_{SIZES[-1][0]}_{SIZES[0][0]}={ratio:.2f} plan_target_s={PLAN_TARGET_S:g} "
        f"apply_target_s={APPLY_TARGET_S:g} ok={str(ok).lower()}"
    )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
