"""The `recon` pack: rules that hold whatever the regime.

Queue coverage (a regulated queue is covered by exactly one recording policy, which names a
regime), one RecordingSettings per org, data residency, market-data feed safety, legal-hold
release approval and the capture-verification topology (200 traders per TradeSense server, every trader of a
regulated queue covered by exactly one collector). Waiver rules live in policy.waivers.

Called by: reconciler.policy (importing this module registers the rules).
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.manifest.kinds.archive import LegalHoldSpec
from reconciler.manifest.kinds.runtime import CollectorTopologySpec, MarketDataFeedSpec
from reconciler.manifest.kinds.settings import RecordingSettingsSpec
from reconciler.manifest.model import Resource
from reconciler.manifest.regions import (
    ALLOWED_JURISDICTIONS,
    AWS_REGION_JURISDICTION,
    GENESYS_REGION_JURISDICTION,
)
from reconciler.policy.findings import Finding, Rule, Severity, register
from reconciler.policy.view import EstateView, bucket_spec, policy_spec, queue_spec

MAX_TRADERS_PER_SERVER = 200
MAX_FEED_TIMEOUT_MS = 200


def _queue_coverage(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for queue in view.queues:
        if not queue_spec(queue).regulated:
            continue
        policies = view.coverage.get(queue.name, [])
        if not policies:
            yield rule.finding(
                queue.address,
                "regulated queue is covered by no recording policy, so its calls may go unrecorded",
                queue.location("spec", "regulated"),
                "spec.recordingPolicy",
            )
        elif len(policies) > 1:
            names = ", ".join(p.address for p in policies)
            yield rule.finding(
                queue.address,
                f"regulated queue is covered by {len(policies)} recording policies ({names}); "
                "which retention wins is up to the platform",
                queue.location("spec", "recordingPolicy"),
                "spec.recordingPolicy",
            )


def _queue_regime(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for queue in view.queues:
        if not queue_spec(queue).regulated:
            continue
        for policy in view.coverage.get(queue.name, []):
            if not policy_spec(policy).regimes:
                yield rule.finding(
                    queue.address,
                    f"regulated queue is covered by {policy.address}, which names no regime, "
                    "so no rule pack checks how it is recorded",
                    policy.location("spec", "regimes"),
                    "spec.regimes",
                )


def _residency(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for queue in view.queues:
        spec = queue_spec(queue)
        allowed = ALLOWED_JURISDICTIONS.get(spec.clientRegion)
        if allowed is None:
            continue
        home = GENESYS_REGION_JURISDICTION[spec.region]
        if home not in allowed:
            yield rule.finding(
                queue.address,
                f"{spec.clientRegion} clients' calls are recorded in {spec.region} ({home})",
                queue.location("spec", "region"),
                "spec.region",
            )
        for policy in view.coverage.get(queue.name, []):
            bucket = view.archive_of(policy)
            if bucket is None:
                continue
            region = bucket_spec(bucket).region
            where = AWS_REGION_JURISDICTION[region]
            if where not in allowed:
                yield rule.finding(
                    queue.address,
                    f"{spec.clientRegion} clients' recordings are archived in {region} ({where}) by {bucket.address}",
                    bucket.location("spec", "region"),
                    "spec.region",
                )


def _settings_per_org(view: EstateView, rule: Rule) -> Iterable[Finding]:
    first_in_region: dict[str, Resource] = {}
    for settings in view.estate.of_kind("RecordingSettings"):
        assert isinstance(settings.spec, RecordingSettingsSpec)
        first = first_in_region.setdefault(settings.spec.region, settings)
        if first is not settings:
            yield rule.finding(
                settings.address,
                f"the org in {settings.spec.region} already has its recording settings in {first.address}; "
                "two would overwrite each other on every apply",
                settings.location("spec", "region"),
                "spec.region",
            )


def _feed_timeout(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for feed in view.estate.of_kind("MarketDataFeed"):
        assert isinstance(feed.spec, MarketDataFeedSpec)
        if feed.spec.timeoutMs > MAX_FEED_TIMEOUT_MS:
            yield rule.finding(
                feed.address,
                f"timeout {feed.spec.timeoutMs} ms exceeds {MAX_FEED_TIMEOUT_MS} ms; a slow feed "
                "would hold up call setup",
                feed.location("spec", "timeoutMs"),
                "spec.timeoutMs",
            )


def _feed_breaker(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for feed in view.estate.of_kind("MarketDataFeed"):
        assert isinstance(feed.spec, MarketDataFeedSpec)
        if feed.spec.breaker is None:
            yield rule.finding(
                feed.address,
                "no circuit breaker: a feed outage would cost every call a full timeout",
                feed.location("spec"),
                "spec.breaker",
            )


def _hold_release(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for hold in view.estate.of_kind("LegalHold"):
        assert isinstance(hold.spec, LegalHoldSpec)
        release = hold.spec.release
        if release is None:
            continue
        missing = [n for n in ("approvedBy", "reason", "ticket") if not (getattr(release, n) or "").strip()]
        if missing:
            yield rule.finding(
                hold.address,
                f"the release lacks {', '.join(missing)}; a hold is released only with a recorded approval",
                hold.location("spec", "release"),
                "spec.release",
            )


def _trader_limit(view: EstateView, rule: Rule) -> Iterable[Finding]:
    servers: dict[str, set[str]] = {}
    where: dict[str, tuple[str, tuple[str | int, ...], Resource]] = {}
    for topology in view.estate.of_kind("CollectorTopology"):
        assert isinstance(topology.spec, CollectorTopologySpec)
        for index, collector in enumerate(topology.spec.collectors):
            endpoints = [collector.endpoints.primary, collector.endpoints.secondary]
            for endpoint in (e for e in endpoints if e is not None):
                servers.setdefault(endpoint, set()).update(t.id for t in collector.traders)
                where.setdefault(endpoint, (topology.address, ("spec", "collectors", index, "traders"), topology))
    for endpoint, traders in servers.items():
        if len(traders) > MAX_TRADERS_PER_SERVER:
            address, path, topology = where[endpoint]
            yield rule.finding(
                address,
                f"{len(traders)} traders behind TradeSense server {endpoint}; one server supports at "
                f"most {MAX_TRADERS_PER_SERVER}",
                topology.location(*path),
                "spec.collectors.traders",
            )


def _trader_users(view: EstateView) -> dict[str, list[tuple[str, tuple[str | int, ...], Resource]]]:
    users: dict[str, list[tuple[str, tuple[str | int, ...], Resource]]] = {}
    for topology in view.estate.of_kind("CollectorTopology"):
        assert isinstance(topology.spec, CollectorTopologySpec)
        for c_index, collector in enumerate(topology.spec.collectors):
            for t_index, trader in enumerate(collector.traders):
                path = ("spec", "collectors", c_index, "traders", t_index)
                users.setdefault(trader.user.lower(), []).append((collector.name, path, topology))
    return users


def _trader_uncovered(view: EstateView, rule: Rule) -> Iterable[Finding]:
    covered = view.memo("trader_users", lambda: _trader_users(view))
    for queue in view.queues:
        spec = queue_spec(queue)
        if not spec.regulated:
            continue
        missing = [m for m in spec.members if m.lower() not in covered]
        if missing:
            yield rule.finding(
                queue.address,
                f"{len(missing)} member(s) of a regulated queue covered by no collector, so "
                f"nobody verifies their calls were recorded: {', '.join(missing)}",
                queue.location("spec", "members"),
                "spec.members",
            )


def _trader_duplicate(view: EstateView, rule: Rule) -> Iterable[Finding]:
    for user, places in view.memo("trader_users", lambda: _trader_users(view)).items():
        collectors = {(t.address, name) for name, _, t in places}
        if len(collectors) > 1:
            _, path, topology = places[1]
            names = ", ".join(sorted(n for _, n in collectors))
            yield rule.finding(
                topology.address,
                f"trader {user} is covered by {len(collectors)} collectors ({names}); "
                "their calls would be counted twice",
                topology.location(*path),
                "spec.collectors.traders",
            )


for _rule in (
    Rule("recon.queue-coverage", "recon", Severity.ERROR, "A regulated queue is covered by exactly one recording policy",
         "name one RecordingPolicy in the queue's spec.recordingPolicy and list it in no other policy's appliesTo",
         _queue_coverage),
    Rule("recon.queue-regime", "recon", Severity.ERROR, "A regulated queue's recording policy names its regime",
         "add the regime (mifid2, fca, cftc, sec17a4) to the policy's spec.regimes", _queue_regime),
    Rule("recon.residency", "recon", Severity.ERROR, "EU, UK and Swiss clients' calls are recorded and archived in allowed regions",
         "record in an org and archive in a bucket within the clients' jurisdiction (EU clients: EU regions)", _residency,
         "GDPR Art 44; UK GDPR Art 45"),
    Rule("recon.recording-settings-per-org", "recon", Severity.ERROR, "One RecordingSettings per Genesys Cloud org",
         "keep one RecordingSettings per region and merge the fields you need into it", _settings_per_org),
    Rule("recon.market-data-timeout", "recon", Severity.ERROR, "A market-data fetch times out within 200 ms",
         "set spec.timeoutMs to 200 or less", _feed_timeout),
    Rule("recon.market-data-breaker", "recon", Severity.ERROR, "A market-data feed has a circuit breaker",
         "add spec.breaker: {failureThreshold: 5, resetAfter: 30s}", _feed_breaker),
    Rule("recon.hold-release-approval", "recon", Severity.ERROR, "A legal hold is released only with approver, reason and ticket",
         "fill spec.release.approvedBy, reason and ticket, or remove spec.release to keep the hold", _hold_release),
    Rule("recon.collector-trader-limit", "recon", Severity.ERROR, "At most 200 traders per TradeSense server",
         "split the traders across collectors, one per TradeSense server", _trader_limit),
    Rule("recon.trader-uncovered", "recon", Severity.ERROR, "Every member of a regulated queue is covered by a collector",
         "add the user as a trader (id, user, turret) to the collector for their TradeSense server", _trader_uncovered),
    Rule("recon.trader-duplicate", "recon", Severity.ERROR, "No trader is covered by two collectors",
         "keep the trader under one collector only; an HA pair belongs in one collector's endpoints", _trader_duplicate),
):  # fmt: skip
    register(_rule)
