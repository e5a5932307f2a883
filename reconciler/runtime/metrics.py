"""Prometheus metrics of the runtime, served on a loopback port (`recon runtime --metrics-port`).

    recon_runtime_calls_total                      calls on covered queues handed to the injector
    recon_runtime_attached_total                   snapshots attached
    recon_runtime_fallbacks_total                  calls recorded as data_fetch_failed
    recon_runtime_instruments_dropped_total        calls recorded as instruments_dropped (no value kept)
    recon_runtime_pii_rejections_total{class}      fields dropped for PII, by class
    recon_runtime_feed_fetches_total{feed}         feed requests made (after coalescing)
    recon_runtime_feed_coalesced_total{feed}       calls that shared another call's fetch
    recon_runtime_feed_failures_total{feed,reason} failed fetches by reason
    recon_runtime_breaker_open{feed}               1 while the feed's breaker is open or half-open
    recon_runtime_injection_lag_seconds            call start → snapshot attached (histogram)
    recon_runtime_loop_stall_seconds               how late a 50 ms event-loop tick ran (histogram)

Counters are read from the injector and fetchers at scrape time (a custom collector), so the
hot path only increments plain integers. The registry is the service's own, never the
process-global one. prometheus-client is used for the exposition format and the HTTP server
rather than code of ours: it is the reference implementation scrapers are tested against.

Called by: reconciler.runtime.service, reconciler.cli.runtime_commands, tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.runtime.snapshot.fetcher import SnapshotFetcher
from reconciler.runtime.snapshot.injector import SnapshotInjector

LAG_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
STALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _Counters(Collector):
    def __init__(self) -> None:
        self.injector: SnapshotInjector | None = None
        self.fetchers: Mapping[str, SnapshotFetcher] = {}

    def collect(self) -> Iterator[Any]:
        injector = self.injector
        if injector is not None:
            counters = injector.counters
            yield CounterMetricFamily("recon_runtime_calls", "Calls on covered queues", value=counters.calls)
            yield CounterMetricFamily("recon_runtime_attached", "Snapshots attached", value=counters.attached)
            yield CounterMetricFamily(
                "recon_runtime_fallbacks", "Calls recorded as data_fetch_failed", value=counters.failed
            )
            yield CounterMetricFamily(
                "recon_runtime_instruments_dropped",
                "Calls whose every instrument value was dropped",
                value=counters.dropped,
            )
            pii = CounterMetricFamily("recon_runtime_pii_rejections", "Fields dropped for PII", labels=["class"])
            for kind, count in sorted(counters.pii_rejections.items()):
                pii.add_metric([kind], count)
            yield pii
        fetches = CounterMetricFamily("recon_runtime_feed_fetches", "Feed requests made", labels=["feed"])
        coalesced = CounterMetricFamily("recon_runtime_feed_coalesced", "Calls that shared a fetch", labels=["feed"])
        failures = CounterMetricFamily("recon_runtime_feed_failures", "Failed fetches", labels=["feed", "reason"])
        breaker = GaugeMetricFamily("recon_runtime_breaker_open", "1 while the breaker is not closed", labels=["feed"])
        for name, fetcher in sorted(self.fetchers.items()):
            fetches.add_metric([name], fetcher.counters.fetches)
            coalesced.add_metric([name], fetcher.counters.coalesced)
            for reason, count in sorted(fetcher.counters.failures.items()):
                failures.add_metric([name, reason], count)
            state = fetcher.breaker.state.value if fetcher.breaker is not None else "closed"
            breaker.add_metric([name], 0 if state == "closed" else 1)
        yield from (fetches, coalesced, failures, breaker)


class RuntimeMetrics:
    """The runtime's registry. See the module docstring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._counters = _Counters()
        self.registry.register(self._counters)
        self.injection_lag = Histogram(
            "recon_runtime_injection_lag_seconds",
            "Call start to snapshot attached",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.loop_stall = Histogram(
            "recon_runtime_loop_stall_seconds",
            "Event-loop tick lateness",
            buckets=STALL_BUCKETS,
            registry=self.registry,
        )
        self._server: Any = None

    def watch(self, injector: SnapshotInjector, fetchers: Mapping[str, SnapshotFetcher]) -> None:
        self._counters.injector, self._counters.fetchers = injector, fetchers

    def render(self) -> str:
        """The exposition text, as a scrape would get it."""
        return generate_latest(self.registry).decode()

    def serve(self, port: int = 0) -> str:
        """Serve /metrics on 127.0.0.1 (`port` 0: chosen by the OS); the URL."""
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self._server = server
        return f"http://127.0.0.1:{server.server_port}/metrics"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
