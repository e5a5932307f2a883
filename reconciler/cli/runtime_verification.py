"""The capture-verification half of `recon runtime`, and the runtime's alert webhook.

`alert_sink` opens the webhook alerts go to (`--alert-webhook URL`, or a secret reference
`env:NAME` / `file:PATH`, since a Slack webhook URL is itself a secret); every runtime alert
(data_fetch_failed, pii_rejected, heads_not_published, capture_gap, collector_down, ...) is
posted there as Slack-compatible JSON, and logged as a JSON line either way.

`open_verification` builds, for the manifests' CollectorTopology (when one is declared and
`--verify` is on), its collectors, the platform reader and the `ContinuousVerifier`, pointed
at the sandbox's TradeSense servers on the sandbox target. `Verification.once` catches the
collectors up and checks once (`--once`); `Verification.run` is the live loop.

Called by: reconciler.cli.runtime_commands.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.cli.collector_targets import queue_members, topologies, topology_target
from reconciler.cli.targets import genesys_client, resolve_reference
from reconciler.engine.workspace import Workspace
from reconciler.errors import UsageError
from reconciler.providers.genesys.client import GenesysClient
from reconciler.runtime.alerts import WebhookAlerts, make_alert
from reconciler.runtime.verification.batch import TopologyPlan, catch_up
from reconciler.runtime.verification.collector import Collector, collectors_from_spec
from reconciler.runtime.verification.continuous import ContinuousVerifier
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.platform import PlatformRecordings
from reconciler.runtime.verification.report import VerificationReport
from reconciler.runtime.verification.triage import TriageStore

log = logging.getLogger("reconciler.runtime")


def alert_sink(ws: Workspace, webhook: str | None) -> WebhookAlerts | None:
    """The webhook alerts are posted to (None: alerts are logged only)."""
    if not webhook:
        return None
    url = resolve_reference(webhook, ws.root, "--alert-webhook")
    return WebhookAlerts(url)


@dataclass
class Verification:
    """The running capture verification of one CollectorTopology."""

    verifier: ContinuousVerifier
    collectors: list[Collector]
    store: CursorStore
    triage: TriageStore
    client: GenesysClient
    collector_alerts: list[tuple[str, str]]

    async def once(self) -> VerificationReport:
        for collector in self.collectors:
            await catch_up(collector, self.collector_alerts)
        return await self.verifier.check_once()

    async def run(self, stop: asyncio.Event) -> None:
        await self.verifier.run(stop)

    async def aclose(self) -> None:
        for collector in self.collectors:
            await collector.close()
        await self.client.aclose()
        self.store.close()
        self.triage.close()


def open_verification(ws: Workspace, db: Path, send: Any) -> Verification | None:
    """The capture verification of the manifests' CollectorTopology; None when none is declared.
    `send(alert)` delivers an Alert (and logs it)."""
    if not ws.estate.of_kind("CollectorTopology"):
        return None
    found = topologies(ws)
    if len(found) > 1:
        raise UsageError(
            f"{len(found)} CollectorTopology manifests are declared; the runtime verifies one per process",
            next_step="run one `recon runtime` per topology with its manifests, or pass --no-verify",
        )
    name, spec = found[0]
    target = topology_target(ws, name, spec)
    plan = TopologyPlan.from_spec(name, target.spec, queue_members(ws))
    store = CursorStore(db)
    triage = TriageStore(db)
    collector_alerts: list[tuple[str, str]] = []

    def on_collector_alert(kind: str, detail: str) -> None:
        collector_alerts.append((kind, detail))
        send(make_alert(kind, detail))

    collectors = collectors_from_spec(target.spec, target.resolve, store, alert=on_collector_alert)
    client, _ = genesys_client(ws.project, ws.root)
    interval = min(c.pollInterval.milliseconds for c in target.spec.collectors) / 1000
    verifier = ContinuousVerifier(
        plan,
        collectors,
        store,
        PlatformRecordings(client, plan.traders_by_user),
        triage.current,
        send,
        interval_s=interval,
    )
    return Verification(verifier, collectors, store, triage, client, collector_alerts)
