"""The call-start hook: fetch, guard, attach, record evidence — never in the call's way.

`SnapshotInjector.on_call_start(call)` runs once per starting call on a queue some
MarketDataFeed applies to (the runtime's event intake calls it as its own task, so call setup
never waits on it):

1. every feed of the call's queue is fetched (`SnapshotFetcher`: hard timeout, breaker,
   coalescing) concurrently;
2. each snapshot goes through the guard (strict schema, PII dropped and counted, an alert per
   call that had PII); several feeds on one queue merge into one `market_snapshot` (their
   instrument keys are distinct per feed by the manifest's rule; `source_provider` joins the
   providers with "+", `timestamp_utc` is the latest) and `instruments` names the instrument
   behind each value (`{"commodity": "Natural_Gas_Hub"}`: from the manifest, not the feed), so
   the attached snapshot says what was priced as well as the price (the seeds' auditor
   searches `market_snapshot.commodity=Natural_Gas_Hub`); only instruments whose value was
   kept are named, so a search by instrument never finds a call whose value was withheld;
3. when the recording exists (`Attacher.recording_id`, a few bounded tries), the result is
   attached to the call as participant data, which travels with the recording export:
   `market_snapshot` = canonical JSON of the snapshot, `market_snapshot_status` = "attached";
   when the feeds answered but the guard dropped *every* instrument value (PII, wrong types),
   the snapshot keeps only `timestamp_utc`, `source_provider` and an empty `instruments`, the
   status is "instruments_dropped" and an alert says so: such a call carries no market data
   and must not look stamped; on any failure `market_snapshot` = "null" and status
   "data_fetch_failed", and an alert;
4. the evidence log gets one record: conversation, recording, SHA-256 of the canonical JSON
   of `{"market_snapshot": ..., "status": ...}` (what was attached), status; that JSON itself
   is kept beside the record for `recon search`. Records of calls that finish while a commit
   runs share the next one (reconciler.runtime.evidence_batch).

Genesys participant data is text, so the snapshot is attached as its canonical JSON string
(`evidence_chain.canonical_json`): the digest in the evidence log is of exactly that text.
The attribute goes on the call's customer participant (the first one): it exists from the
first event to the end of the recording.

Called by: the runtime service (event intake), tests, bench/bench_runtime.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.runtime.evidence import Entry, EvidenceLog
from reconciler.runtime.evidence_batch import BatchedAppender
from reconciler.runtime.evidence_chain import canonical_json
from reconciler.runtime.snapshot.feedconfig import FeedSettings, Snapshot
from reconciler.runtime.snapshot.fetcher import SnapshotFetcher
from reconciler.runtime.snapshot.guard import guard

log = logging.getLogger(__name__)

ATTACHED, FAILED, DROPPED = "attached", "data_fetch_failed", "instruments_dropped"
STATUSES = (ATTACHED, FAILED, DROPPED)
"""Every status a call's stamping can end in (evidence_chain.STATUSES has them and audio_archived)."""
INSTRUMENTS_KEY = "instruments"
"""The snapshot key naming the instrument behind each value: {as: symbol}, from the manifest."""
RECORDING_TRIES = 5
"""How many times the recording is looked for before the call is recorded as failed."""


@dataclass(frozen=True, slots=True)
class CallStart:
    """A call that started on a queue: what the event intake hands over."""

    conversation_id: str
    queue_id: str
    participant_id: str
    """The participant the snapshot is attached to (the customer's)."""
    started: dt.datetime


class Attacher(Protocol):
    """Where snapshots go: the recording platform."""

    async def recording_id(self, conversation_id: str) -> str | None:
        """The call's recording id, or None when there is none (yet). Read-only."""
        ...

    async def attach(self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]) -> None:
        """Merge `attributes` into the participant's data. Idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class Feed:
    """One MarketDataFeed as the injector uses it."""

    settings: FeedSettings
    fetcher: SnapshotFetcher


@dataclass(slots=True)
class InjectorCounters:
    calls: int = 0
    attached: int = 0
    failed: int = 0
    dropped: int = 0
    """Calls whose every instrument value the guard dropped (status instruments_dropped)."""
    pii_rejections: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Injection:
    """What happened to one call."""

    conversation_id: str
    status: str
    recording_id: str | None
    attachment: dict[str, Any]
    reason: str = ""


Alert = Callable[[str, Mapping[str, Any]], None]


def _keys(feed: Feed) -> set[str]:
    return {instrument.as_ for instrument in feed.settings.instruments}


class SnapshotInjector:
    """See the module docstring."""

    def __init__(
        self,
        feeds_by_queue: Mapping[str, Sequence[Feed]],
        attacher: Attacher,
        evidence: EvidenceLog | None,
        alert: Alert,
        *,
        recording_wait_s: float = 0.2,
    ) -> None:
        self.feeds_by_queue = feeds_by_queue
        self.attacher = attacher
        self.evidence = evidence
        self._appender = BatchedAppender(evidence) if evidence is not None else None
        """Group commit: records that arrive while a commit runs share the next one."""
        self.alert = alert
        self.recording_wait_s = recording_wait_s
        self.counters = InjectorCounters()

    def covers(self, queue_id: str) -> bool:
        return bool(self.feeds_by_queue.get(queue_id))

    async def on_call_start(self, call: CallStart) -> Injection | None:
        """Stamp one call (see the module docstring); None when no feed covers its queue."""
        feeds = self.feeds_by_queue.get(call.queue_id) or ()
        if not feeds:
            return None
        self.counters.calls += 1
        snapshot, reason, kept = await self._snapshot(call, feeds)
        initial = FAILED if snapshot is None else ATTACHED if kept else DROPPED
        attachment: dict[str, Any] = {"market_snapshot": snapshot, "status": initial}
        recording = await self._recording(call.conversation_id)
        if recording is None:
            reason = reason or "no recording for the call"
            attachment = {"market_snapshot": None, "status": FAILED}
        status = str(attachment["status"])
        try:
            await self.attacher.attach(
                call.conversation_id,
                call.participant_id,
                {
                    "market_snapshot": canonical_json(attachment["market_snapshot"]).decode(),
                    "market_snapshot_status": status,
                },
            )
        except Exception as error:  # the platform refused: still evidence, and an alert
            reason, status = f"attach failed: {error}", FAILED
            attachment = {"market_snapshot": None, "status": FAILED}
        if self._appender is not None:
            document = canonical_json(attachment)
            digest = hashlib.sha256(document).hexdigest()
            await self._appender.append(
                Entry(call.conversation_id, recording or "", digest, None, status, None, document, call.started)
            )
        if status == FAILED:
            self.counters.failed += 1
            self.alert("data_fetch_failed", {"conversationId": call.conversation_id, "reason": reason})
        elif status == DROPPED:
            self.counters.dropped += 1
            self.alert(DROPPED, {"conversationId": call.conversation_id, "reason": reason})
        else:
            self.counters.attached += 1
        return Injection(call.conversation_id, status, recording, attachment, reason)

    async def _snapshot(self, call: CallStart, feeds: Sequence[Feed]) -> tuple[Snapshot | None, str, int]:
        """The merged snapshot (None on failure), the reason when it failed or carries no
        instrument, and how many instrument values it carries."""
        results = await asyncio.gather(*(feed.fetcher.fetch() for feed in feeds))
        merged: dict[str, Any] = {}
        instruments: dict[str, str] = {}
        providers: list[str] = []
        stamps: list[str] = []
        withheld: list[str] = []
        for feed, result in zip(feeds, results, strict=True):
            if not result.ok or result.snapshot is None:
                return None, f"{feed.settings.name}: {result.reason}", 0
            verdict = guard(result.snapshot, feed.settings.instruments)
            if verdict.pii_count:
                self.counters.pii_rejections.update(verdict.pii_count)
                self.alert(
                    "pii_rejected",
                    {
                        "conversationId": call.conversation_id,
                        "feed": feed.settings.name,
                        "classes": dict(verdict.pii_count),
                    },
                )
            if not verdict.valid:
                return None, f"{feed.settings.name}: the snapshot failed the schema", 0
            clean = dict(verdict.clean)
            providers.append(str(clean.pop("source_provider")))
            stamps.append(str(clean.pop("timestamp_utc")))
            merged.update(clean)
            instruments.update({i.as_: i.symbol for i in feed.settings.instruments if i.as_ in clean})
            withheld += [f"{feed.settings.name}.{d.key}: {d.reason}" for d in verdict.dropped if d.key in _keys(feed)]
        snapshot = {"timestamp_utc": max(stamps), "source_provider": "+".join(providers), **merged}
        snapshot[INSTRUMENTS_KEY] = instruments
        reason = "" if instruments else "every instrument value was dropped: " + "; ".join(withheld or ["none kept"])
        return snapshot, reason, len(instruments)

    async def _recording(self, conversation_id: str) -> str | None:
        delay = self.recording_wait_s / RECORDING_TRIES
        for attempt in range(RECORDING_TRIES):
            try:
                found = await self.attacher.recording_id(conversation_id)
            except Exception as error:  # a platform hiccup is a missing recording for this try
                log.warning("reading the recording of %s failed: %s", conversation_id, error)
                found = None
            if found:
                return found
            if attempt + 1 < RECORDING_TRIES:
                await asyncio.sleep(delay * (attempt + 1))
        return None
