"""Runtime kinds: MarketDataFeed (snapshot injection) and CollectorTopology (capture
verification against the trading switch's call detail records).

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, model_validator

from reconciler.dates import InstantField
from reconciler.durations import Duration, DurationField, between
from reconciler.manifest.kinds.base import (
    FieldError,
    Model,
    Name,
    Percent,
    Reference,
    Spec,
    register_kind,
)
from reconciler.manifest.kinds.text import Email, Identifier, Key, Line, Prose, identifier_check
from reconciler.manifest.outbound import FileReference, HttpsUrl, SecretReference, WssUrl, check_link_local


class FeedTls(Model):
    clientCert: FileReference
    """Client certificate for mutual TLS (file:PATH)."""
    clientKey: SecretReference
    """Client private key: a secret reference (env:NAME or file:PATH)."""
    ca: FileReference | None = None
    """CA bundle that signs the feed's server certificate (file:PATH)."""


class FeedCredentials(Model):
    token: SecretReference | None = None
    """A bearer token or API key, as a secret reference."""
    clientId: str | None = None
    """OAuth client id where the feed uses client credentials (e.g. Refinitiv)."""
    clientSecret: SecretReference | None = None
    """OAuth client secret, as a secret reference."""


RESET_AFTER = (Duration(1, "s"), Duration(1, "h"))
"""A breaker probes the feed again after 1s to 1h: sooner hammers a feed that is down,
later leaves calls without market data long after it is back."""
POLL_INTERVAL = (Duration(1, "s"), Duration(1, "h"))
"""CDRs are polled every 1s to 1h: more often floods the TradeSense server's API, less often
leaves a missed recording unnoticed for hours."""
TOLERANCE = (Duration(0, "s"), Duration(10, "m"))
"""startTolerance and durationTolerance: 0s to 10m; wider pairs calls that are not the same call."""
GRACE = (Duration(0, "s"), Duration(24, "h"))
"""lateRecordingGrace: 0s to 24h; a recording later than a day is a gap to report, not to wait for."""
FEED_TIMEOUT_MS = (10, 60_000)
"""A fetch may take 10 ms to 60 s (the compliance rule recon.feed-timeout wants 200 ms or less)."""


class Breaker(Model):
    failureThreshold: StrictInt = Field(ge=1, le=1000)
    """Consecutive failures that open the breaker (1 to 1000)."""
    resetAfter: Annotated[DurationField, AfterValidator(between(*RESET_AFTER))]
    """How long the breaker stays open before one probe is allowed (1s to 1h)."""


RESERVED_SNAPSHOT_KEYS = ("timestamp_utc", "source_provider", "instruments")
"""Keys every attached market_snapshot has: no instrument may be stored under them."""


FeedText = Annotated[
    str,
    Field(min_length=1, max_length=256),
    AfterValidator(
        identifier_check(
            r"[!-~]( ?[!-~])*",
            "a feed symbol or field",
            "write it as the feed spells it, in ASCII (single spaces allowed, e.g. CL1 Comdty)",
        )
    ),
]
"""A symbol or field as the feed spells it: printable ASCII, single spaces inside."""


class Instrument(Model):
    symbol: FeedText
    """The instrument as the feed names it (slashes and periods are kept: EUR/USD, RDSa.L)."""
    field: FeedText
    """The feed field to read (e.g. price_usd)."""
    as_: Key = Field(alias="as")
    """The key the value is stored under in market_snapshot (e.g. commodity)."""


class FeedScope(Model):
    queues: list[Name] = Field(min_length=1)
    """Queues whose calls get a snapshot."""


@register_kind(
    "MarketDataFeed",
    summary="Where call-start market data comes from, and how it is fetched without delaying calls.",
)
class MarketDataFeedSpec(Spec):
    provider: Literal["generic-rest", "bloomberg", "refinitiv", "ice"]
    """The feed's wire dialect."""
    url: HttpsUrl
    """The snapshot endpoint: https:// (http:// only to loopback). Its token endpoint, for
    refinitiv, is on the same host."""
    allowLinkLocal: bool = False
    """Allow `url` to be a link-local address (169.254.0.0/16, fe80::/10); cloud metadata
    addresses are refused even then."""
    tls: FeedTls | None = None
    """Mutual TLS settings."""
    credentials: FeedCredentials | None = None
    """Feed credentials, as secret references."""
    timeoutMs: StrictInt = Field(default=200, ge=FEED_TIMEOUT_MS[0], le=FEED_TIMEOUT_MS[1])
    """Hard timeout of one fetch in milliseconds (10 to 60000); calls are never held up longer."""
    coalesceWindowMs: StrictInt = Field(default=10, ge=1, le=1000)
    """Calls that start within this many milliseconds of a fetch in flight for the same
    instruments share it: one feed request serves every call of a busy moment. The snapshot's
    timestamp_utc is the feed's, so how old the prices were stays visible."""
    breaker: Breaker | None = None
    """Circuit breaker; a feed without one is a compliance finding."""
    instruments: list[Instrument] = Field(min_length=1)
    """What is captured at call start."""
    appliesTo: FeedScope
    """Which queues' calls are stamped."""

    @model_validator(mode="after")
    def _unique_snapshot_keys(self) -> MarketDataFeedSpec:
        check_link_local(self.url, ("url",), "http", allowed=self.allowLinkLocal)
        seen: set[str] = set()
        for index, instrument in enumerate(self.instruments):
            if instrument.as_ in RESERVED_SNAPSHOT_KEYS:
                raise FieldError(
                    ("instruments", index, "as"),
                    f"'{instrument.as_}' is a key market_snapshot always has "
                    f"({', '.join(RESERVED_SNAPSHOT_KEYS)}); store the instrument under another name",
                )
            if instrument.as_ in seen:
                raise FieldError(
                    ("instruments", index, "as"),
                    f"two instruments are stored as '{instrument.as_}'; one would overwrite the other in "
                    "market_snapshot: give each its own 'as'",
                )
            seen.add(instrument.as_)
        return self

    def references(self) -> Iterable[Reference]:
        for index, queue in enumerate(self.appliesTo.queues):
            yield Reference("Queue", queue, ("appliesTo", "queues", index))


class DataSource(Model):
    type: Literal["bt-trading-enterprise"]
    """The trading switch product."""
    switch: Line = Field(min_length=1)
    """The switch's name, as operations know it."""


class Endpoints(Model):
    primary: WssUrl
    """The TradeSense WBA endpoint (wss://...; ws:// only to loopback)."""
    secondary: WssUrl | None = None
    """The HA partner; only for a pair that serves duplicates of the same CDRs."""
    allowLinkLocal: bool = False
    """Allow the endpoints to be link-local addresses (169.254.0.0/16, fe80::/10); cloud
    metadata addresses are refused even then."""

    @model_validator(mode="after")
    def _distinct(self) -> Endpoints:
        check_link_local(self.primary, ("primary",), "ws", allowed=self.allowLinkLocal)
        check_link_local(self.secondary, ("secondary",), "ws", allowed=self.allowLinkLocal)
        if self.secondary is not None and self.secondary == self.primary:
            raise FieldError(
                ("secondary",), "secondary is the same endpoint as primary; remove it or name the HA partner"
            )
        return self


class Trader(Model):
    id: Identifier
    """The trader's id on the switch."""
    user: Email
    """The trader's user (e-mail) on the recording platform."""
    turret: Identifier
    """The turret the trader sits at."""


class Collector(Model):
    name: Name
    """The collector's name."""
    endpoints: Endpoints
    """The TradeSense server (or HA pair) this collector polls."""
    token: SecretReference
    """The TradeSense API user token, as a secret reference."""
    pollInterval: Annotated[DurationField, AfterValidator(between(*POLL_INTERVAL))]
    """How often CDRs are polled (e.g. 10s; 1s to 1h)."""
    traders: list[Trader] = Field(min_length=1)
    """Traders configured on this TradeSense server (at most 200)."""


class Matching(Model):
    startTolerance: Annotated[DurationField, AfterValidator(between(*TOLERANCE))]
    """How far a recording's start may be from the CDR's and still match (0s to 10m)."""
    durationTolerance: Annotated[DurationField, AfterValidator(between(*TOLERANCE))]
    """How much shorter a recording may be than the call before it counts as partial (0s to 10m)."""
    lateRecordingGrace: Annotated[DurationField, AfterValidator(between(*GRACE))]
    """How long to wait for a late recording before a call counts as not recorded (0s to 24h)."""


class Exemption(Model):
    """Calls intentionally not recorded, declared before they happen (e.g. a turret's line
    wired to a non-trading extension, a weekend switch test)."""

    trader: Identifier | None = None
    """The trader id (`collectors[].traders[].id`) whose calls are exempt; absent: every trader."""
    line: Identifier | None = None
    """The turret line the exemption is limited to; absent: every line."""
    from_: InstantField = Field(alias="from")
    """Start of the window (ISO-8601 with a zone, e.g. 2026-11-21T18:00:00Z), inclusive."""
    to: InstantField
    """End of the window, exclusive."""
    reason: Prose = Field(min_length=10)
    """Why these calls are intentionally not recorded, in words an auditor can read."""

    @model_validator(mode="after")
    def _window(self) -> Exemption:
        if self.to <= self.from_:
            raise FieldError(("to",), "to must be after from")
        if self.trader is None and self.line is None:
            raise FieldError(
                ("trader",),
                "name a trader or a line: an exemption for every call of the switch would hide a recorder outage",
            )
        return self


@register_kind(
    "CollectorTopology",
    summary="The capture-verification collectors that read the trading switch's CDRs.",
)
class CollectorTopologySpec(Spec):
    dataSource: DataSource
    """The switch whose calls are verified."""
    collectors: list[Collector] = Field(min_length=1)
    """One collector per TradeSense server (or HA pair)."""
    matching: Matching
    """How CDRs and recordings are matched."""
    target: Percent
    """Target share of calls verified as recorded (e.g. 99.9%)."""
    exemptions: list[Exemption] = Field(default_factory=list)
    """Windows in which a trader's (or a line's) calls are intentionally not recorded."""

    @model_validator(mode="after")
    def _unique_names_ids_and_turrets(self) -> CollectorTopologySpec:
        names: set[str] = set()
        ids: dict[str, str] = {}
        turrets: dict[str, str] = {}
        for c_index, collector in enumerate(self.collectors):
            if collector.name in names:
                raise FieldError(
                    ("collectors", c_index, "name"),
                    f"two collectors are named '{collector.name}'; give each its own name",
                )
            names.add(collector.name)
            for t_index, trader in enumerate(collector.traders):
                for seen, value, what, key in (
                    (ids, trader.id, "trader id", "id"),
                    (turrets, trader.turret, "turret", "turret"),
                ):
                    if value in seen:
                        raise FieldError(
                            ("collectors", c_index, "traders", t_index, key),
                            f"{what} '{value}' appears twice (collectors {seen[value]} and {collector.name}); "
                            "a CDR could not be tied to one trader",
                        )
                    seen[value] = collector.name
        for e_index, exemption in enumerate(self.exemptions):
            if exemption.trader is not None and exemption.trader not in ids:
                raise FieldError(
                    ("exemptions", e_index, "trader"),
                    f"no collector has a trader '{exemption.trader}'; use a trader id from collectors[].traders[].id",
                )
        return self
