"""The capture-verification collector: one logical CDR source (a TradeSense server, or a
primary/secondary HA pair serving duplicates of the same CDRs) read into the cursor store.

`Collector.poll_once()` is one step: pick the member to poll (the primary when it is due, else
the secondary), connect if needed, poll from the member's stored cursor (or, with no cursor or
after `cursor_invalid`, from `since` = the collector's high-water reportedAt minus `overlap_ms`),
and store the batch and the new cursor in one transaction. A member that is unreachable, closes,
times out, misses heartbeats or answers `unavailable` is closed and put in bounded exponential
backoff (or `retryAfterMs`), and the partner is polled in the same step. CDRs are keyed by
(collector, cdrId): what two members (or a replay after a crash) deliver twice is stored once.
`run(stop)` repeats `poll_once` every `poll_interval_s`, at once while the server says `more`,
and compares the pair over closed windows every `ha_check_every_s`.

Alerts go to `alert(kind, detail)`; kinds (ALERT_KINDS): `collector_down` (no member could be
polled; once per outage), `unauthorized` (the token was refused; that member is not retried
until the token's value changes), `too_many_traders`, `bad_request` and `protocol_error`
(adapter bugs / a server off the schema), `ha_mismatch` (`compare_members`), `invalid_cdr` (CDRs
that failed the checks of cdr_check: stored as anomalies, reported by `recon verify`, never
dropped silently and never failing the poll) and `cdr_changed` (a CDR id re-sent with different
fields; the first version is kept): one alert per kind per poll, naming the first ten. No detail and no
log line carries a token; endpoints are shown without user info or query.

A collector configured with more than 200 traders is refused at construction
(CollectorConfigError): TradeSense serves at most 200 per server.

`collectors_from_spec` builds the collectors of a CollectorTopology manifest, given a resolver
for token references (`env:NAME` / `file:PATH` -> value).

Called by: the runtime service (`recon runtime`), `recon verify`, tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import ReconError
from reconciler.manifest.kinds.runtime import CollectorTopologySpec
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import CDR_CHANGED, INVALID_CDR, Cdr, CdrAnomaly
from reconciler.runtime.verification.wba import (
    DEFAULT_LIMIT,
    MAX_TRADERS,
    CdrSource,
    WbaBadRequest,
    WbaBatch,
    WbaClient,
    WbaCursorInvalid,
    WbaError,
    WbaProtocolError,
    WbaTooManyTraders,
    WbaUnauthorized,
    WbaUnavailable,
    safe_url,
)

log = logging.getLogger(__name__)

ALERT_KINDS = (
    "collector_down",
    "unauthorized",
    "too_many_traders",
    "bad_request",
    "protocol_error",
    "ha_mismatch",
    INVALID_CDR,
    CDR_CHANGED,
)
Alert = Callable[[str, str], None]
"""`alert(kind, detail)`: kind is one of ALERT_KINDS; detail says what and what to do, never a secret."""
SourceFactory = Callable[[str, str, Callable[[], str]], CdrSource]
"""`factory(member, url, token)` -> an unconnected CdrSource; `token()` resolves the token's value."""
OVERLAP_MS = 5 * 60_000
HA_WINDOW_PAGES = 1000
_IDS_SHOWN = 10


class CollectorConfigError(ReconError):
    """A collector cannot be set up as configured (raised at construction, never while polling)."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one `poll_once` did. `member` is None when no member could be polled."""

    member: str | None
    received: int = 0
    new: int = 0
    """CDRs stored for the first time (received - new were duplicates)."""
    more: bool = False
    anomalies: int = 0
    """Invalid or changed CDRs recorded for the first time by this poll."""

    @property
    def ok(self) -> bool:
        return self.member is not None


@dataclass(frozen=True, slots=True)
class HaReport:
    """`compare_members` over reportedAt in [from_ms, to_ms)."""

    from_ms: int
    to_ms: int
    primary: int
    secondary: int
    only_primary: list[str]
    only_secondary: list[str]
    differing: list[str]
    """Ids both members report, with different fields."""

    @property
    def matches(self) -> bool:
        return not (self.only_primary or self.only_secondary or self.differing)


@dataclass(slots=True)
class _Member:
    name: str
    url: str
    source: CdrSource | None = None
    failures: int = 0
    retry_at: float = 0.0
    failed: bool = False
    refused_token: str | None = None
    """Digest of the token value the member refused (it is not retried with that value)."""
    alerted: set[str] = field(default_factory=set)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Collector:
    """One logical CDR source (see the module doc). Not thread-safe: one event loop; `poll_once`
    and `compare_members` are serialised by an asyncio lock."""

    def __init__(
        self,
        name: str,
        store: CursorStore,
        primary: str,
        secondary: str | None = None,
        *,
        token: Callable[[], str],
        traders: Sequence[str] = (),
        poll_interval_s: float = 10.0,
        alert: Alert | None = None,
        source_factory: SourceFactory | None = None,
        limit: int = DEFAULT_LIMIT,
        overlap_ms: int = OVERLAP_MS,
        poll_timeout_s: float = 30.0,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        ha_check_every_s: float | None = 900.0,
        ha_settle_ms: int = 10 * 60_000,
        ha_slack_ms: int = 60_000,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        rng: Callable[[], float] = random.random,
    ) -> None:
        distinct = len(set(traders))
        if distinct > MAX_TRADERS:
            raise CollectorConfigError(
                f"collector {name} is configured with {distinct} traders; a TradeSense server serves at most "
                f"{MAX_TRADERS}",
                next_step="split the traders over one collector per TradeSense server (at most 200 each)",
            )
        if poll_interval_s <= 0 or limit < 1 or overlap_ms < 0 or not 0 <= reconnect_initial_s <= reconnect_max_s:
            raise ValueError("poll_interval_s > 0, limit >= 1, overlap_ms >= 0, 0 <= reconnect_initial_s <= max")
        self.name = name
        self.store = store
        self.traders = list(traders)
        self.poll_interval_s = poll_interval_s
        self.limit = limit
        self.overlap_ms = overlap_ms
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.ha_check_every_s = ha_check_every_s
        self.ha_settle_ms = ha_settle_ms
        self.ha_slack_ms = ha_slack_ms
        self._token = token
        self._alert = alert
        self._clock, self._now_ms, self._rng = clock, now_ms, rng
        self._factory: SourceFactory = source_factory or functools.partial(
            _wba_source, collector=name, poll_timeout_s=poll_timeout_s
        )
        self.members = [_Member("primary", primary)] + ([_Member("secondary", secondary)] if secondary else [])
        self.down = False
        """True from a `collector_down` alert until a member is polled again."""
        self._lock = asyncio.Lock()
        self._ha_to: int | None = None
        self._ha_next = 0.0

    def __repr__(self) -> str:
        return f"Collector({self.name}: {', '.join(f'{m.name}={safe_url(m.url)}' for m in self.members)})"

    # --- polling ---------------------------------------------------------------------------

    async def poll_once(self) -> PollResult:
        """One poll of the preferred due member (failing over within the step); stores the batch
        and the member's cursor in one transaction. Never raises a WbaError (those mark the
        member down, back it off and may alert); a store error propagates and nothing of the
        batch is stored (the next poll re-reads it from the unchanged cursor)."""
        async with self._lock:
            for member in self.members:
                if not self._due(member):
                    continue
                try:
                    batch = await self._fetch(member)
                except WbaError as error:
                    await self._failed(member, error)
                    continue
                saved = self.store.save_batch_checked(
                    self.name,
                    member.name,
                    batch.cdrs,
                    batch.cursor,
                    batch.high_water_ms,
                    batch.reported_at_ms,
                    batch.rejected,
                )
                self._succeeded(member)
                self._alert_anomalies(saved.anomalies)
                received = len(batch.cdrs) + len(batch.rejected)
                return PollResult(member.name, received, saved.new, batch.more, len(saved.anomalies))
            if not self.down and all(m.failed for m in self.members):
                self.down = True
                self._raise_alert(
                    "collector_down",
                    f"collector {self.name}: no member can be polled ("
                    + ", ".join(f"{m.name} {safe_url(m.url)}" for m in self.members)
                    + "); CDRs are not being collected. Check the TradeSense servers and the network; "
                    "the collector keeps retrying",
                )
            return PollResult(None)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set: every `poll_interval_s`, at once while `more`; after a failed
        step, again when the first member's backoff ends (bounded by the poll interval). Compares
        the HA pair on schedule. Closes the sources on the way out."""
        try:
            while not stop.is_set():
                try:
                    result = await self.poll_once()
                except Exception as exc:  # a store error must not end collection: retry, bounded
                    log.error("collector %s: poll failed (%s); retrying", self.name, type(exc).__name__)
                    result = PollResult(None)
                await self._maybe_compare()
                if result.more:
                    continue
                delay = self.poll_interval_s if result.ok else self._retry_delay()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close every member's connection (idempotent)."""
        for member in self.members:
            await self._drop(member)

    def _due(self, member: _Member) -> bool:
        if member.refused_token is not None:
            if _digest(self._token()) == member.refused_token:
                return False
            member.refused_token = None  # the token changed: try it
            member.retry_at = 0.0
        return self._clock() >= member.retry_at

    def _since(self) -> int | None:
        high_water = self.store.high_water(self.name)
        return None if high_water is None else max(0, high_water - self.overlap_ms)

    async def _connected(self, member: _Member) -> CdrSource:
        if member.source is None:
            member.source = self._factory(member.name, member.url, self._token)
        await member.source.connect()
        return member.source

    async def _fetch(self, member: _Member) -> WbaBatch:
        source = await self._connected(member)
        checkpoint = self.store.cursor(self.name, member.name)
        if checkpoint is not None and checkpoint.cursor is not None:
            try:
                return await source.poll(checkpoint.cursor, None, self.limit)
            except WbaCursorInvalid:
                log.info("collector %s: %s does not know its stored cursor; polling with since", self.name, member.name)
        return await source.poll(None, self._since(), self.limit)

    async def _failed(self, member: _Member, error: WbaError) -> None:
        await self._drop(member)
        member.failed = True
        member.failures += 1
        if isinstance(error, WbaUnavailable) and error.retry_after_ms is not None:
            delay = min(self.reconnect_max_s, error.retry_after_ms / 1000)
        elif isinstance(error, WbaTooManyTraders):
            delay = self.reconnect_max_s
        else:
            delay = min(self.reconnect_max_s, self.reconnect_initial_s * 2 ** min(member.failures - 1, 30))
            delay *= 1 + 0.25 * self._rng()
        member.retry_at = self._clock() + delay
        log.warning("collector %s: %s failed: %s (retry in %.1f s)", self.name, member.name, error.message, delay)
        kind = {
            WbaUnauthorized: "unauthorized",
            WbaTooManyTraders: "too_many_traders",
            WbaBadRequest: "bad_request",
            WbaProtocolError: "protocol_error",
        }.get(type(error))
        if kind == "unauthorized":
            member.refused_token = _digest(self._token())
            member.alerted.discard(kind)  # one alert per refused token value
        if kind is not None and kind not in member.alerted:
            member.alerted.add(kind)
            next_step = f"; next: {error.next_step}" if error.next_step else ""
            self._raise_alert(kind, f"{error.message}{next_step}")

    def _succeeded(self, member: _Member) -> None:
        member.failed, member.failures, member.retry_at = False, 0, 0.0
        member.alerted.clear()
        if self.down:
            self.down = False
            log.warning("collector %s: polling again (%s)", self.name, member.name)

    async def _drop(self, member: _Member) -> None:
        source, member.source = member.source, None
        if source is not None:
            with contextlib.suppress(Exception):
                await source.close()

    def _retry_delay(self) -> float:
        earliest = min(m.retry_at for m in self.members) - self._clock()
        return max(0.01, min(self.poll_interval_s, max(earliest, self.reconnect_initial_s)))

    def _alert_anomalies(self, anomalies: Sequence[CdrAnomaly]) -> None:
        for kind, what in ((INVALID_CDR, "CDR(s) failed the checks"), (CDR_CHANGED, "CDR(s) re-sent changed")):
            found = [a for a in anomalies if a.kind == kind]
            if not found:
                continue
            shown = "; ".join(a.detail for a in found[:_IDS_SHOWN])
            more = f"; and {len(found) - _IDS_SHOWN} more" if len(found) > _IDS_SHOWN else ""
            self._raise_alert(
                kind,
                f"collector {self.name}: {len(found)} {what} ({found[0].member}): {shown}{more}. "
                "They are kept as findings of `recon verify`; fix them at the switch",
            )

    def _raise_alert(self, kind: str, detail: str) -> None:
        log.warning("collector alert %s: %s", kind, detail)
        if self._alert is None:
            return
        try:
            self._alert(kind, detail)
        except Exception:
            log.exception("collector %s: the alert callback failed for %s", self.name, kind)

    # --- HA pair comparison ------------------------------------------------------------------

    async def compare_members(self, from_ms: int, to_ms: int) -> HaReport | None:
        """Read CDRs reported in the closed window [from_ms, to_ms) from both members (with
        `ha_slack_ms` either side, so reportedAt that differ slightly between members are not
        mismatches) and compare their ids and fields; alert `ha_mismatch` when they differ.
        Reads only: the store and cursors are untouched. None when there is no secondary or a
        member could not be read (that member's connection is closed; polling handles outages)."""
        if len(self.members) < 2:
            return None
        async with self._lock:
            seen: list[dict[str, tuple[Cdr, int]]] = []
            for member in self.members:
                try:
                    seen.append(await self._window(member, from_ms - self.ha_slack_ms, to_ms + self.ha_slack_ms))
                except WbaError as error:
                    log.warning("collector %s: HA check could not read %s: %s", self.name, member.name, error.message)
                    await self._drop(member)
                    return None
        first, second = seen
        in_first = {i for i, (_, at) in first.items() if from_ms <= at < to_ms}
        in_second = {i for i, (_, at) in second.items() if from_ms <= at < to_ms}
        report = HaReport(
            from_ms,
            to_ms,
            len(in_first),
            len(in_second),
            sorted(i for i in in_first if i not in second),
            sorted(i for i in in_second if i not in first),
            sorted(i for i in in_first | in_second if i in first and i in second and first[i][0] != second[i][0]),
        )
        if not report.matches:
            self._raise_alert("ha_mismatch", self._mismatch_detail(report))
        return report

    async def _window(self, member: _Member, since_ms: int, until_ms: int) -> dict[str, tuple[Cdr, int]]:
        source = await self._connected(member)
        found: dict[str, tuple[Cdr, int]] = {}
        cursor: str | None = None
        for _ in range(HA_WINDOW_PAGES):
            batch = await source.poll(cursor, since_ms if cursor is None else None, self.limit)
            for cdr, at in zip(batch.cdrs, batch.reported_at_ms, strict=True):
                found.setdefault(cdr.cdr_id, (cdr, at))
            high = batch.high_water_ms
            if not batch.more or (high is not None and high >= until_ms):
                break
            cursor = batch.cursor
        return found

    def _mismatch_detail(self, report: HaReport) -> str:
        def ids(values: list[str]) -> str:
            shown = ", ".join(values[:_IDS_SHOWN])
            return f"{len(values)} ({shown}{', …' if len(values) > _IDS_SHOWN else ''})"

        return (
            f"collector {self.name}: the HA pair differs over reportedAt [{report.from_ms}, {report.to_ms}): "
            f"primary {report.primary} CDRs, secondary {report.secondary}; only on primary {ids(report.only_primary)}; "
            f"only on secondary {ids(report.only_secondary)}; differing fields {ids(report.differing)}. "
            "An HA pair must serve duplicates of the same CDRs: check both servers read the same switch and "
            "traders, or remove the secondary"
        )

    async def _maybe_compare(self) -> None:
        if len(self.members) < 2 or self.ha_check_every_s is None or self._clock() < self._ha_next:
            return
        to_ms = self._now_ms() - self.ha_settle_ms
        from_ms = self._ha_to if self._ha_to is not None else to_ms - int(self.ha_check_every_s * 1000)
        self._ha_next = self._clock() + self.ha_check_every_s
        if to_ms <= from_ms:
            return
        try:
            if await self.compare_members(from_ms, to_ms) is not None:
                self._ha_to = to_ms
        except Exception as exc:
            log.error("collector %s: HA check failed (%s)", self.name, type(exc).__name__)


def _wba_source(member: str, url: str, token: Callable[[], str], *, collector: str, poll_timeout_s: float) -> CdrSource:
    return WbaClient(url, token, collector=collector, member=member, poll_timeout_s=poll_timeout_s)


def collectors_from_spec(
    spec: CollectorTopologySpec,
    resolve: Callable[[str], str],
    store: CursorStore,
    *,
    alert: Alert | None = None,
    **options: Any,
) -> list[Collector]:
    """One Collector per `spec.collectors[]`. `resolve` turns a token reference into its value; it
    is called once here (a missing secret fails at startup: CollectorConfigError) and again at
    each connect (a rotated token is picked up). `options` are Collector keyword arguments."""
    built: list[Collector] = []
    for entry in spec.collectors:
        token = functools.partial(resolve, entry.token)
        try:
            token()
        except Exception as exc:
            raise CollectorConfigError(
                f"collector {entry.name}: its token reference {entry.token} cannot be resolved ({type(exc).__name__})",
                next_step="set the environment variable or file the reference names",
            ) from None
        built.append(
            Collector(
                entry.name,
                store,
                entry.endpoints.primary,
                entry.endpoints.secondary,
                token=token,
                traders=[t.id for t in entry.traders],
                poll_interval_s=entry.pollInterval.milliseconds / 1000,
                alert=alert,
                **options,
            )
        )
    return built
