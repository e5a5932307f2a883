"""The runtime service behind `recon runtime`: one asyncio process that stamps calls.

Built from the MarketDataFeed manifests and the target:

- one `SnapshotFetcher` per feed (adapter, breaker, coalescing) and a `SnapshotInjector` over
  the target's Genesys org (`GenesysAttacher`, or the `ProcessAttacher` it is given: platform
  writes in their own process) and the evidence log (default `.recon/runtime.db`);
- `stamp_recent(since)`: the calls that started on covered queues since `since` (analytics
  details query, paged) and are not in the evidence log yet are stamped — the `--once` mode,
  and what a restart or a gap needs;
- `run_live(stop)`: the event intake (notification channels, reconnecting and reconciling gaps:
  reconciler.runtime.intake) hands each call start to the injector as its own task, so no
  call waits on another;
- metrics for Prometheus (`RuntimeMetrics`): calls, attachments, fallbacks, PII rejections by
  class, breaker state per feed, fetch and injection latency histograms, event-loop stall.

Called by: reconciler.cli.runtime_commands; bench/bench_runtime.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.providers.genesys.client import GenesysClient
from reconciler.runtime.evidence import EvidenceLog
from reconciler.runtime.metrics import RuntimeMetrics
from reconciler.runtime.snapshot.feedconfig import FeedSettings, Resolve
from reconciler.runtime.snapshot.fetcher import SnapshotFetcher, open_fetcher
from reconciler.runtime.snapshot.genesys_attach import GenesysAttacher
from reconciler.runtime.snapshot.injector import Attacher, CallStart, Feed, Injection, SnapshotInjector

log = logging.getLogger("reconciler.runtime")

QUEUES_PATH = "/api/v2/routing/queues"
DETAILS_PATH = "/api/v2/analytics/conversations/details/query"
DETAILS_PAGE = 100
MAX_PAGES = 1000
CONCURRENCY = 64
"""Calls stamped at once by `stamp_recent`."""


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """One feed and the queue names it applies to."""

    settings: FeedSettings
    queues: tuple[str, ...]


@dataclass(slots=True)
class RuntimeService:
    """See the module docstring. Use `async with` or call `aclose()`."""

    client: GenesysClient
    feeds: Sequence[FeedPlan]
    evidence: EvidenceLog
    resolve: Resolve
    alert: Callable[[str, Mapping[str, Any]], None]
    metrics: RuntimeMetrics = field(default_factory=RuntimeMetrics)
    injector: SnapshotInjector | None = None
    fetchers: dict[str, SnapshotFetcher] = field(default_factory=dict)
    queue_ids: dict[str, str] = field(default_factory=dict)
    attacher: Attacher | None = None
    """Where platform writes go: default a `GenesysAttacher` over `client` on this loop;
    `recon runtime` passes a `ProcessAttacher` (attach_worker: the writes in their own process)."""

    async def start(self) -> None:
        """Resolve queue names to ids (one paged list) and open the feeds. Raises ReconError
        for a queue the org does not have or an unusable feed configuration."""
        wanted = {queue for plan in self.feeds for queue in plan.queues}
        async for queue in self.client.paginate(QUEUES_PATH, {}):
            if isinstance(queue, dict) and queue.get("name") in wanted:
                self.queue_ids[str(queue["name"])] = str(queue["id"])
        missing = sorted(wanted - set(self.queue_ids))
        if missing:
            log.warning("queues %s are not in the org: their calls are not stamped", ", ".join(missing))
        by_queue: dict[str, list[Feed]] = {}
        for plan in self.feeds:
            fetcher = open_fetcher(plan.settings, self.resolve)
            self.fetchers[plan.settings.name] = fetcher
            for queue in plan.queues:
                if queue in self.queue_ids:
                    by_queue.setdefault(self.queue_ids[queue], []).append(Feed(plan.settings, fetcher))
        attacher = self.attacher or GenesysAttacher(self.client)
        self.injector = SnapshotInjector(by_queue, attacher, self.evidence, self._alert)
        self.metrics.watch(self.injector, self.fetchers)

    def _alert(self, kind: str, detail: Mapping[str, Any]) -> None:
        log.warning("alert %s %s", kind, dict(detail), extra={"alert": kind, "detail": dict(detail)})
        self.alert(kind, detail)

    async def stamp(self, call: CallStart) -> Injection | None:
        """Stamp one call and record how long after its start the snapshot was attached."""
        assert self.injector is not None, "start() first"
        injection = await self.injector.on_call_start(call)
        if injection is not None:
            lag = (dt.datetime.now(dt.UTC) - call.started).total_seconds()
            self.metrics.injection_lag.observe(max(lag, 0.0))
            log.info(
                "call stamped",
                extra={"conversationId": call.conversation_id, "status": injection.status, "lag_s": round(lag, 4)},
            )
        return injection

    async def stamp_recent(self, since: dt.datetime, until: dt.datetime | None = None) -> list[Injection]:
        """Stamp the calls on covered queues that started in [since, until) and have no
        evidence record yet. Returns what was done, in start order."""
        assert self.injector is not None, "start() first"
        calls = await self.recent_calls(since, until or dt.datetime.now(dt.UTC))
        done = await asyncio.to_thread(self.evidence.conversation_ids)
        todo = [call for call in calls if call.conversation_id not in done]
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(call: CallStart) -> Injection | None:
            async with limit:
                return await self.stamp(call)

        results = await asyncio.gather(*(one(call) for call in todo))
        return [r for r in results if r is not None]

    async def recent_calls(self, since: dt.datetime, until: dt.datetime) -> list[CallStart]:
        """Call starts on covered queues in [since, until), from the analytics details query."""
        queue_ids = sorted({qid for qid in self.queue_ids.values() if self.injector and self.injector.covers(qid)})
        if not queue_ids:
            return []
        predicates = [{"type": "dimension", "dimension": "queueId", "value": qid} for qid in queue_ids]
        span = f"{_utc(since)}/{_utc(until)}"
        calls: list[CallStart] = []
        for number in range(1, MAX_PAGES):
            page = await self.client.post(
                DETAILS_PATH,
                json={
                    "interval": span,
                    "order": "asc",
                    "orderBy": "conversationStart",
                    "paging": {"pageSize": DETAILS_PAGE, "pageNumber": number},
                    "segmentFilters": [{"type": "or", "predicates": predicates}],
                },
            )
            conversations = page.get("conversations") or []
            calls += [c for c in (call_from_details(item, set(queue_ids)) for item in conversations) if c is not None]
            if len(conversations) < DETAILS_PAGE:
                return calls
        return calls

    async def aclose(self) -> None:
        for fetcher in self.fetchers.values():
            await fetcher.aclose()

    async def __aenter__(self) -> RuntimeService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def call_from_details(conversation: Mapping[str, Any], queue_ids: set[str]) -> CallStart | None:
    """A CallStart from one analytics conversation: its queue (the first segment on a
    covered queue) and its customer participant (else the first)."""
    participants = [p for p in conversation.get("participants") or [] if isinstance(p, dict)]
    queue_id = next(
        (
            str(segment["queueId"])
            for p in participants
            for session in p.get("sessions") or []
            for segment in session.get("segments") or []
            if segment.get("queueId") in queue_ids
        ),
        None,
    )
    if queue_id is None or not participants:
        return None
    customer = next((p for p in participants if p.get("purpose") in ("customer", "external")), participants[0])
    started = dt.datetime.fromisoformat(str(conversation["conversationStart"]).replace("Z", "+00:00"))
    return CallStart(str(conversation["conversationId"]), queue_id, str(customer["participantId"]), started)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def freeze_startup_heap() -> None:
    """Collect once, then move every object alive after start-up (imported modules, manifests,
    clients) out of the garbage collector's reach (`gc.freeze`).

    A full collection walks every tracked object; with the start-up heap in it, each one
    stalled the event loop for 60–110 ms under load (measured by bench/bench_runtime.py),
    twice the 50 ms budget. Frozen objects are still freed by reference counting; only cycles
    among them would outlive their use, and start-up objects live as long as the process.
    Called once by `recon runtime` after the service has started (and by the bench)."""
    gc.collect()
    gc.freeze()


def loop_stall_monitor(metrics: RuntimeMetrics, interval_s: float = 0.05) -> Callable[[], asyncio.Task[None]]:
    """A task factory measuring event-loop stalls: how late a periodic wake-up runs."""

    async def watch() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(interval_s)
            metrics.loop_stall.observe(max(time.perf_counter() - before - interval_s, 0.0))

    return lambda: asyncio.create_task(watch())
