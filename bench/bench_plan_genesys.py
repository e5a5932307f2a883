"""Benchmark: `recon plan` against the embedded Genesys sandbox, 5,000 queues and 500 policies.

What it measures (issue 4): how many HTTP requests a plan makes against a large org, and how
long it takes when every request costs 20 ms. The embedded sandbox (in process, on loopback)
gets 5,000 routing queues bench-queue-00001.. and 500 media retention policies
bench-policy-0001.. (`GenesysSandbox.add_bulk`) and 20 ms injected latency per request. A
temporary project (`recon.yaml` with `target: sandbox`) declares the same 5,000 Queue
resources (unregulated, eu-west-1, EU) and 500 RecordingPolicy resources (no regime); they
need not match the live objects, the plan is what is measured. Providers are built with
`genesys_providers` on a `GenesysClient` pointed at the sandbox (not the CLI's daemon).

- requests    HTTP requests one plan makes, from the client's counter and from the
              sandbox's request_count (they should agree); token fetch included;
- minimum     1 token + sum over the listed collections of ceil(N / max page size), page
              sizes from `paging.MAX_PAGE_SIZE`, N the live collection sizes (the seed's
              objects included). The users list is not needed: no LegalHold is declared;
- plan_s      `make_plan` only (observe + diff + classify), after the workspace is loaded;
              load_s (load + render + validate + rule packs) is printed separately;
- one GET per resource: what observing each resource with its own GET would cost (1 token +
              one GET per declared resource, ids assumed known from state, so no list at
              all); the wall time is ESTIMATED as requests x 20 ms sequentially (latency
              only, a lower bound), next to a measured per-GET cost from a 100-GET sample.

The client is built with rate_per_minute=100000 so its own limiter (default 300/min, burst 50)
does not dominate; what the default budget would mean is printed too, and one extra plan is
run with the default limiter for comparison. Each plan runs RUNS times (fresh client each
time, same sandbox); figures are medians.

Targets: requests within 10 % of the minimum; plan_s under 5 s at 20 ms latency.

Output: figures, then one line

    BENCH plan_genesys queues=5000 policies=500 requests=N minimum=M overhead_pct=X wall_s=X
    latency_ms=20 one_get_per_resource_requests=N one_get_per_resource_s=X ok=true|false

Run: `.venv/bin/python bench/bench_plan_genesys.py` (or `make bench`). Exit 0 when both
targets are met, 2 when one is missed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from reconciler.engine.planner import PlanOptions, make_plan
from reconciler.engine.workspace import Workspace, open_workspace
from reconciler.policy.findings import Severity
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.directory import QUEUES_PATH, USERS_PATH
from reconciler.providers.genesys.paging import MAX_PAGE_SIZE
from reconciler.providers.genesys.provider import genesys_providers
from reconciler.providers.genesys.ratelimit import DEFAULT_BURST, DEFAULT_RATE_PER_MINUTE
from reconciler.providers.genesys.regions import Endpoints
from reconciler.sandbox.genesys_server import GenesysSandbox
from reconciler.state.model import State

QUEUES = 5000
POLICIES = 500
LATENCY_MS = 20
RUNS = 3
BENCH_RATE_PER_MINUTE = 100_000.0  # high, so the client's own limiter does not dominate
SAMPLE_GETS = 100  # sequential GETs by id, to measure the one-GET-per-resource cost per request
REQUEST_TARGET_PCT = 10.0
WALL_TARGET_S = 5.0
TODAY = dt.date(2026, 1, 5)
POLICIES_PATH = "/api/v2/recording/mediaretentionpolicies"
TOKEN_PATH = "/oauth/token"


def write_project(folder: Path) -> None:
    """recon.yaml (target: sandbox) plus manifests for the bench queues and policies."""
    (folder / "recon.yaml").write_text("target: sandbox\nstate:\n  backend: local\n  path: .recon/state.json\n")
    queue = (
        "---\napiVersion: recon/v1\nkind: Queue\nmetadata:\n  name: bench-queue-{n:05d}\nspec:\n"
        "  regulated: false\n  region: eu-west-1\n  clientRegion: EU\n"
    )
    policy = (
        "---\napiVersion: recon/v1\nkind: RecordingPolicy\nmetadata:\n  name: bench-policy-{n:04d}\nspec:\n"
        "  regimes: []\n  record:\n    inbound: always\n    outbound: always\n    internal: never\n"
    )
    (folder / "queues.yaml").write_text("".join(queue.format(n=n) for n in range(1, QUEUES + 1)))
    (folder / "policies.yaml").write_text("".join(policy.format(n=n) for n in range(1, POLICIES + 1)))


def new_client(sandbox: GenesysSandbox, rate_per_minute: float) -> GenesysClient:
    base = sandbox.base_url
    return GenesysClient(
        Endpoints(base, base), sandbox.client_id, sandbox.client_secret, rate_per_minute=rate_per_minute
    )


def plan_once(sandbox: GenesysSandbox, ws: Workspace, rate_per_minute: float) -> dict[str, Any]:
    """One plan with a fresh client: wall time, requests (client and sandbox), plan counts."""
    before = sandbox.request_count

    async def run() -> tuple[float, int, dict[str, int]]:
        client = new_client(sandbox, rate_per_minute)
        providers = genesys_providers(client, client_id=sandbox.client_id, today=TODAY)
        try:
            started = time.perf_counter()
            plan = await make_plan(
                ws.estate, ws.evaluation, State.new(), providers, PlanOptions(target=ws.target),
                manifest_digest=ws.manifest_digest, now=dt.datetime.now(dt.UTC),
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            return elapsed, client.requests, plan.counts()
        finally:
            await providers.aclose()

    wall_s, client_requests, counts = asyncio.run(run())
    by_path = sandbox.request_count
    by_path.subtract(before)
    by_path = Counter({path: n for path, n in by_path.items() if n})
    return {
        "wall_s": wall_s,
        "client_requests": client_requests,
        "sandbox_requests": sum(by_path.values()),
        "by_path": by_path,
        "counts": counts,
    }


def sample_get_cost(sandbox: GenesysSandbox) -> float:
    """Seconds per sequential GET of one queue by id (measured over SAMPLE_GETS, token excluded)."""
    ids = [qid for qid, q in sandbox.store.data["queues"].items() if str(q.get("name", "")).startswith("bench-")]

    async def run() -> float:
        async with new_client(sandbox, BENCH_RATE_PER_MINUTE) as client:
            await client.get(f"{QUEUES_PATH}/{ids[0]}")  # token fetch + warm connection, not timed
            started = time.perf_counter()
            for qid in ids[1 : SAMPLE_GETS + 1]:
                await client.get(f"{QUEUES_PATH}/{qid}")
            return (time.perf_counter() - started) / SAMPLE_GETS

    return asyncio.run(run())


def limiter_seconds(
    requests: int, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE, burst: int = DEFAULT_BURST
) -> float:
    """Least time `requests` take under a token bucket starting full (burst, then the rate)."""
    return max(0, requests - burst) / (rate_per_minute / 60.0)


def main() -> int:
    with GenesysSandbox(None) as sandbox, tempfile.TemporaryDirectory(prefix="recon-bench-genesys-") as folder:
        sandbox.add_bulk(queues=QUEUES, policies=POLICIES)
        live_queues = len(sandbox.store.data["queues"])
        live_policies = len(sandbox.store.data["policies"])
        root = Path(folder)
        write_project(root)

        started = time.perf_counter()
        ws = open_workspace([str(root)], {}, today=TODAY)
        load_s = time.perf_counter() - started
        declared = Counter(r.kind for r in ws.estate.resources.values())
        errors = [f for f in ws.evaluation.findings if f.severity is Severity.ERROR]

        sandbox.set_faults(latency_ms=LATENCY_MS)
        runs = [plan_once(sandbox, ws, BENCH_RATE_PER_MINUTE) for _ in range(RUNS)]
        default_limiter = plan_once(sandbox, ws, DEFAULT_RATE_PER_MINUTE)
        per_get_s = sample_get_cost(sandbox)

    queue_pages = math.ceil(live_queues / MAX_PAGE_SIZE[QUEUES_PATH])
    policy_pages = math.ceil(live_policies / MAX_PAGE_SIZE[POLICIES_PATH])
    minimum = 1 + queue_pages + policy_pages
    requests = int(statistics.median(r["client_requests"] for r in runs))
    sandbox_requests = int(statistics.median(r["sandbox_requests"] for r in runs))
    wall_s = statistics.median(r["wall_s"] for r in runs)
    overhead_pct = 100.0 * (requests - minimum) / minimum
    one_get_requests = 1 + len(ws.estate.resources)
    one_get_s = one_get_requests * LATENCY_MS / 1000
    one_get_measured_s = one_get_requests * per_get_s

    print(f"estate: {declared['Queue']} Queue + {declared['RecordingPolicy']} RecordingPolicy declared")
    print(f"        sandbox holds {live_queues} queues, {live_policies} policies (bench objects + the seed's)")
    print(f"        rule findings: {len(ws.evaluation.findings)} ({len(errors)} errors)")
    print(f"load_s (load + render + validate + rules): {load_s:.3f}")
    print(
        f"client rate_per_minute={BENCH_RATE_PER_MINUTE:g} for the timed runs (default {DEFAULT_RATE_PER_MINUTE:g}/min,"
        f" burst {DEFAULT_BURST}), so the client's own limiter does not dominate"
    )
    print(f"latency injected by the sandbox: {LATENCY_MS} ms per request")
    print()
    print(f"{'run':>4} {'plan_s':>8} {'client_req':>10} {'sandbox_req':>11}  plan actions")
    for index, run in enumerate(runs, 1):
        actions = {k: v for k, v in run["counts"].items() if v}
        print(f"{index:>4} {run['wall_s']:>8.3f} {run['client_requests']:>10} {run['sandbox_requests']:>11}  {actions}")
    print(f"requests by path (last run): {dict(sorted(runs[-1]['by_path'].items()))}")
    agree = all(r["client_requests"] == r["sandbox_requests"] for r in runs)
    print(f"client and sandbox counts agree: {agree}")
    print()
    print(
        f"minimum: 1 token + ceil({live_queues}/{MAX_PAGE_SIZE[QUEUES_PATH]}) queue pages"
        f" + ceil({live_policies}/{MAX_PAGE_SIZE[POLICIES_PATH]}) policy pages = {minimum}"
        f"  (no {USERS_PATH} list: no LegalHold declared)"
    )
    print(f"requests (median): client {requests}, sandbox {sandbox_requests}; overhead {overhead_pct:+.1f} %")
    print(f"plan_s (median of {RUNS}, make_plan only): {wall_s:.3f}")
    print(
        f"with the default {DEFAULT_RATE_PER_MINUTE:g}/min limiter (measured, one run): "
        f"{default_limiter['wall_s']:.3f} s, {default_limiter['client_requests']} requests "
        f"(under the burst of {DEFAULT_BURST}: no wait)"
    )
    print()
    print(f"one GET per resource: 1 token + {len(ws.estate.resources)} GETs = {one_get_requests} requests")
    print(f"  estimated {one_get_s:.1f} s sequentially at {LATENCY_MS} ms each (latency only)")
    print(
        f"  measured {per_get_s * 1000:.1f} ms per sequential GET over {SAMPLE_GETS} GETs"
        f" -> {one_get_measured_s:.1f} s extrapolated"
    )
    print(
        f"  under the default {DEFAULT_RATE_PER_MINUTE:g}/min budget: at least"
        f" {limiter_seconds(one_get_requests) / 60:.1f} min (vs {limiter_seconds(requests):.1f} s for the plan)"
    )
    ok = overhead_pct <= REQUEST_TARGET_PCT and wall_s < WALL_TARGET_S and not errors
    print(
        f"BENCH plan_genesys queues={QUEUES} policies={POLICIES} requests={requests} minimum={minimum} "
        f"overhead_pct={overhead_pct:.1f} wall_s={wall_s:.3f} latency_ms={LATENCY_MS} "
        f"one_get_per_resource_requests={one_get_requests} one_get_per_resource_s={one_get_s:.1f} "
        f"ok={str(ok).lower()}"
    )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
