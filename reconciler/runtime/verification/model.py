"""The data capture verification works on: CDRs from the trading switch, recordings from the
recording platform, and the classes a call can end up in.

Times are integers: milliseconds since the Unix epoch, UTC (a million CDRs compare and sort
fast as ints, and there is no timezone to get wrong). Durations are milliseconds too.

- `Cdr`: one call segment as the switch (BT TradeSense) reports it, identified by `cdr_id`
  (unique per switch: a primary/secondary HA pair reports the same call under the same id).
- `Recording`: one recorded segment on the platform, already tied to a trader id (the
  platform knows users; the CollectorTopology manifest maps each trader id to a user).
- `Verdict` and `SEVERITY`: the classes of the seeds' Capture Verification, with their
  severities; `CdrAnomaly`: what the switch sent that recon could not take as a call (a CDR
  that fails the checks, or a CDR id re-sent with different fields); `Tolerances` from the manifest's `matching` block; `Exemption`: a declared
  window in which a trader's (or a line's) calls are intentionally not recorded.

Called by: reconciler.runtime.verification (matcher, collector client, reports), the sandbox
TradeSense adapter, bench/bench_verify.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """What became of one call (or one recording)."""

    VERIFIED = "verified"
    """A recording matches the CDR in time and covers its duration (within tolerance)."""
    NOT_RECORDED = "not_recorded"
    """No recording matches the CDR and the late-recording grace has passed."""
    PARTIAL = "partial"
    """A recording matches but is shorter than the call beyond the duration tolerance."""
    RECORDED_WITHOUT_CDR = "recorded_without_cdr"
    """A recording no CDR accounts for (the switch did not report the call)."""
    PENDING = "pending"
    """No recording yet, but the call ended within the late-recording grace: check again later."""
    EXEMPT = "exempt"
    """No recording, and the call falls in a declared exemption (intentionally not recorded)."""


SEVERITY: dict[Verdict, str] = {
    Verdict.VERIFIED: "ok",
    Verdict.NOT_RECORDED: "critical",
    Verdict.PARTIAL: "major",
    Verdict.RECORDED_WITHOUT_CDR: "minor",
    Verdict.PENDING: "info",
    Verdict.EXEMPT: "ok",
}


@dataclass(frozen=True, slots=True)
class Cdr:
    """One call segment reported by the switch."""

    cdr_id: str
    """The switch's identity of the segment; the same on both members of an HA pair."""
    collector: str
    """The collector (CollectorTopology `collectors[].name`) that read it."""
    trader_id: str
    turret: str
    line: str
    """The line (or channel) on the turret the call was on."""
    direction: str
    """"in", "out" or "intercom"."""
    start_ms: int
    duration_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


INVALID_CDR = "invalid_cdr"
"""A CDR that failed the checks (reconciler.runtime.verification.cdr_check)."""
CDR_CHANGED = "cdr_changed"
"""A CDR id seen again with different fields: the switch changed its story."""
ANOMALY_SEVERITY = "major"
"""Both are reviewed (exit 2): a call the switch reported is not verified as reported."""


@dataclass(frozen=True, slots=True)
class CdrAnomaly:
    """What the switch sent that is not a verifiable call. Text is safe to show (escaped, cut)."""

    kind: str
    """INVALID_CDR or CDR_CHANGED."""
    collector: str
    member: str
    """The HA member (primary/secondary) that sent it."""
    cdr_id: str
    trader_id: str
    at_ms: int
    """The call's start when known, else its reportedAt, else when recon saw it."""
    detail: str
    fingerprint: str
    """SHA-256 hex of what was sent: the same thing sent again is the same anomaly."""

    @property
    def key(self) -> str:
        """Stable finding key: "<kind>:<cdr id>#<12 hex of the fingerprint>"."""
        return f"{self.kind}:{self.cdr_id}#{self.fingerprint[:12]}"


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded segment on the recording platform."""

    recording_id: str
    conversation_id: str
    trader_id: str
    start_ms: int
    duration_ms: int
    turret: str | None = None
    """When the platform carries it (participant data); a mismatch prevents a match."""
    line: str | None = None

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True, slots=True)
class Tolerances:
    """The manifest's `matching` block, in milliseconds."""

    start_ms: int
    """A recording matches a CDR when their starts differ by at most this (after skew)."""
    duration_ms: int
    """A matched recording shorter than the call by more than this is partial."""
    grace_ms: int
    """A CDR without a recording is pending until this long after the call ended."""


@dataclass(frozen=True, slots=True)
class Exemption:
    """Calls intentionally not recorded: a trader's (or a line's, or both) in [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    reason: str
    trader_id: str | None = None
    line: str | None = None

    def covers(self, cdr: Cdr) -> bool:
        return (
            self.start_ms <= cdr.start_ms < self.end_ms
            and (self.trader_id is None or self.trader_id == cdr.trader_id)
            and (self.line is None or self.line == cdr.line)
        )


def to_ms(moment: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def from_ms(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC)


def iso_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds and Z (e.g. 2026-11-21T09:00:00.000Z): how reports,
    findings and alerts show an epoch-ms time."""
    return from_ms(epoch_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
