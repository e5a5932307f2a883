"""The capture-verification matcher: ties the switch's CDRs to the platform's recordings, in
both directions, and classifies every call and every recording.

`match` is pure (no I/O, no clock: `now_ms` is a parameter) and O(n log n):

- Pairing is per trader id. A recording can pair with a CDR when their starts differ by at most
  `tolerances.start_ms` once the CDR's start is put on the recorder's clock (`skew_ms`, per
  collector, see `skew.estimate_skew`), and the recording's turret and line, when it carries
  them, equal the CDR's. Each trader's CDRs and recordings are sorted by start and walked with
  two pointers (a window merge), which lists the candidate pairs.
- Pairing is one-to-one. When no CDR and no recording of a trader has more than one candidate
  (the usual case), every candidate is a pair. Otherwise the trader's candidates are taken
  nearest start first (greedy), ties broken by the longer recording, then cdr_id, then
  recording_id, so back-to-back or overlapping calls each get the recording nearest to them
  and the outcome does not depend on input order.
- A pair is PARTIAL when the recording is shorter than the call by more than
  `tolerances.duration_ms`, else VERIFIED (exactly at a tolerance is within it).
- A CDR without a recording is EXEMPT when an `Exemption` covers it, else PENDING while
  `now_ms < end + grace_ms` (end on the recorder's clock, i.e. with the skew), else
  NOT_RECORDED. A recording without a CDR is pending while `now_ms < end + grace_ms` (the CDR
  may come with the next poll: counted as PENDING, listed in `pending_recording_ids`, not a
  finding), else RECORDED_WITHOUT_CDR.

Callers pass unique cdr_ids (the collector merges an HA pair's duplicates) and unique
recording_ids. Called by: reconciler.runtime.verification (service, reports, CLI `recon
verify`), bench/bench_verify.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import attrgetter, le, sub

from reconciler.runtime.verification.compliance import compliance
from reconciler.runtime.verification.model import (
    SEVERITY,
    Cdr,
    Exemption,
    Recording,
    Tolerances,
    Verdict,
    iso_ms,
)

_DURATION = attrgetter("duration_ms")
_CDR_ID = attrgetter("cdr_id")
_RECORDING_ID = attrgetter("recording_id")
_TRADER = attrgetter("trader_id")
_COLLECTOR = attrgetter("collector")


@dataclass(frozen=True, slots=True)
class Finding:
    """One non-verified outcome: a call (partial, not recorded, pending, exempt) or a recording
    without a CDR."""

    verdict: Verdict
    severity: str
    cdr: Cdr | None
    recording: Recording | None
    detail: str

    @property
    def key(self) -> str:
        """Stable across runs, for triage tags: "<verdict>:<cdr_id>", or
        "recorded_without_cdr:<recording_id>" for a recording without a CDR."""
        if self.cdr is not None:
            return f"{self.verdict.value}:{self.cdr.cdr_id}"
        assert self.recording is not None
        return f"{self.verdict.value}:{self.recording.recording_id}"


@dataclass(frozen=True)
class MatchResult:
    """What `match` found. Verified pairs are kept as two parallel id lists (no object per pair)."""

    counts: Counter[Verdict]
    """Per verdict: calls, plus recordings for RECORDED_WITHOUT_CDR and recording-side PENDING."""
    findings: tuple[Finding, ...]
    """Every non-verified outcome but pending recordings, sorted by key."""
    verified_cdr_ids: list[str]
    verified_recording_ids: list[str]
    """Parallel to verified_cdr_ids: pair i is (verified_cdr_ids[i], verified_recording_ids[i])."""
    pending_recording_ids: tuple[str, ...]
    """Recordings without a CDR still within the grace (sorted)."""
    per_trader: dict[str, Counter[Verdict]] = field(default_factory=dict)
    """Same units as counts, per trader id (sorted)."""
    per_collector: dict[str, Counter[Verdict]] = field(default_factory=dict)
    """Calls only (a recording has no collector), per collector (sorted)."""

    def verified_pairs(self) -> Iterator[tuple[str, str]]:
        """(cdr_id, recording_id) of each verified pair."""
        return zip(self.verified_cdr_ids, self.verified_recording_ids, strict=True)

    @property
    def compliance(self) -> float | None:
        """verified / (verified + partial + not_recorded) over everything; None when nothing counts."""
        return compliance(self.counts)


def match(
    cdrs: Sequence[Cdr],
    recordings: Sequence[Recording],
    tolerances: Tolerances,
    *,
    now_ms: int,
    exemptions: Iterable[Exemption] = (),
    skew_ms: Mapping[str, int] | None = None,
) -> MatchResult:
    """Match CDRs and recordings both ways and classify each (see the module docstring)."""
    skews = {collector: ms for collector, ms in (skew_ms or {}).items() if ms}
    c_start = [c.start_ms for c in cdrs]
    if skews:
        c_start = [start + skews.get(c.collector, 0) for start, c in zip(c_start, cdrs, strict=True)]
    r_start = list(map(attrgetter("start_ms"), recordings))
    c_trader = list(map(attrgetter("trader_id"), cdrs))
    r_trader = list(map(attrgetter("trader_id"), recordings))

    pairs_c, pairs_r = _pair(cdrs, recordings, c_start, r_start, c_trader, r_trader, tolerances.start_ms)

    # Matched: verified or partial. C-level passes over the pairs (no Python code per pair).
    dtol = tolerances.duration_ms
    cdr_p = list(map(cdrs.__getitem__, pairs_c))
    rec_p = list(map(recordings.__getitem__, pairs_r))
    shortfall = map(sub, map(_DURATION, cdr_p), map(_DURATION, rec_p))
    within = bytes(map(le, shortfall, repeat(dtol)))  # 1: verified, 0: partial
    ver_cdrs = list(compress(cdr_p, within))
    verified_cdr_ids = list(map(_CDR_ID, ver_cdrs))
    verified_recording_ids = list(map(_RECORDING_ID, compress(rec_p, within)))
    partial = [(cdr_p[k], rec_p[k]) for k in _zeros(within)]

    per_trader: dict[str, Counter[Verdict]] = {}
    per_collector: dict[str, Counter[Verdict]] = {}
    for trader, count in Counter(map(_TRADER, ver_cdrs)).items():
        per_trader[trader] = Counter({Verdict.VERIFIED: count})
    for collector, count in Counter(map(_COLLECTOR, ver_cdrs)).items():
        per_collector[collector] = Counter({Verdict.VERIFIED: count})
    del cdr_p, rec_p, ver_cdrs
    counts: Counter[Verdict] = Counter({Verdict.VERIFIED: len(verified_cdr_ids)})
    findings: list[Finding] = []

    def tally(verdict: Verdict, trader: str, collector: str | None) -> None:
        counts[verdict] += 1
        _bump(per_trader, trader, verdict)
        if collector is not None:
            _bump(per_collector, collector, verdict)

    for cdr, rec in partial:
        short = cdr.duration_ms - rec.duration_ms
        detail = (
            f"recording {rec.recording_id} is {rec.duration_ms} ms for a {cdr.duration_ms} ms call: "
            f"{short} ms short (tolerance {dtol} ms)"
        )
        findings.append(Finding(Verdict.PARTIAL, SEVERITY[Verdict.PARTIAL], cdr, rec, detail))
        tally(Verdict.PARTIAL, cdr.trader_id, cdr.collector)

    # CDRs without a recording: exempt, pending or not recorded.
    by_trader: dict[str | None, list[Exemption]] = {}
    for exemption in exemptions:
        by_trader.setdefault(exemption.trader_id, []).append(exemption)
    anyone = by_trader.get(None, [])
    grace = tolerances.grace_ms
    for ci in _unset(len(cdrs), pairs_c):
        cdr = cdrs[ci]
        cover = next((e for e in (*by_trader.get(cdr.trader_id, ()), *anyone) if e.covers(cdr)), None)
        if cover is not None:
            verdict, detail = Verdict.EXEMPT, f"exempt: {cover.reason}"
        elif now_ms < (until := c_start[ci] + cdr.duration_ms + grace):
            verdict, detail = Verdict.PENDING, f"no recording yet; grace ends {iso_ms(until)}"
        else:
            verdict = Verdict.NOT_RECORDED
            detail = (
                f"no recording of trader {cdr.trader_id} (turret {cdr.turret}, line {cdr.line}) started "
                f"within {tolerances.start_ms} ms of {iso_ms(c_start[ci])} (recorder clock)"
            )
        findings.append(Finding(verdict, SEVERITY[verdict], cdr, None, detail))
        tally(verdict, cdr.trader_id, cdr.collector)

    # Recordings without a CDR: pending or recorded without CDR.
    pending_recordings: list[str] = []
    for ri in _unset(len(recordings), pairs_r):
        rec = recordings[ri]
        if now_ms < rec.end_ms + grace:
            pending_recordings.append(rec.recording_id)
            tally(Verdict.PENDING, rec.trader_id, None)
            continue
        detail = f"no CDR of trader {rec.trader_id} started within {tolerances.start_ms} ms of {iso_ms(rec.start_ms)}"
        verdict = Verdict.RECORDED_WITHOUT_CDR
        findings.append(Finding(verdict, SEVERITY[verdict], None, rec, detail))
        tally(verdict, rec.trader_id, None)

    findings.sort(key=attrgetter("key"))
    return MatchResult(
        counts=counts,
        findings=tuple(findings),
        verified_cdr_ids=verified_cdr_ids,
        verified_recording_ids=verified_recording_ids,
        pending_recording_ids=tuple(sorted(pending_recordings)),
        per_trader={trader: per_trader[trader] for trader in sorted(per_trader)},
        per_collector={collector: per_collector[collector] for collector in sorted(per_collector)},
    )


def _pair(
    cdrs: Sequence[Cdr],
    recordings: Sequence[Recording],
    c_start: list[int],
    r_start: list[int],
    c_trader: list[str],
    r_trader: list[str],
    tol: int,
) -> tuple[list[int], list[int]]:
    """The one-to-one pairs (parallel lists of indices into cdrs and recordings)."""
    c_groups = _group(c_trader)
    r_groups = _group(r_trader)
    c_key, r_key = c_start.__getitem__, r_start.__getitem__
    pairs_c: list[int] = []
    pairs_r: list[int] = []
    for trader in sorted(c_groups.keys() & r_groups.keys()):
        cis, ris = c_groups[trader], r_groups[trader]
        cis.sort(key=c_key)
        ris.sort(key=r_key)
        rs = list(map(r_key, ris))
        m = len(rs)
        lo = 0
        last = -1  # the highest position in ris that was a candidate so far
        conflict = False
        cand_c: list[int] = []
        cand_r: list[int] = []
        for ci in cis:
            start = c_start[ci]
            low = start - tol
            while lo < m and rs[lo] < low:
                lo += 1
            high = start + tol
            j = lo
            found = 0
            while j < m and rs[j] <= high:
                ri = ris[j]
                rec = recordings[ri]
                turret, line = rec.turret, rec.line
                if (turret is not None and turret != cdrs[ci].turret) or (line is not None and line != cdrs[ci].line):
                    j += 1
                    continue
                if j <= last:
                    conflict = True
                last = j
                found += 1
                cand_c.append(ci)
                cand_r.append(ri)
                j += 1
            if found > 1:
                conflict = True
        if conflict:
            cand_c, cand_r = _greedy(cdrs, recordings, c_start, r_start, cand_c, cand_r)
        pairs_c += cand_c
        pairs_r += cand_r
    return pairs_c, pairs_r


def _greedy(
    cdrs: Sequence[Cdr],
    recordings: Sequence[Recording],
    c_start: list[int],
    r_start: list[int],
    cand_c: list[int],
    cand_r: list[int],
) -> tuple[list[int], list[int]]:
    """Nearest start first; then the longer recording, then cdr_id, then recording_id."""

    def rank(k: int) -> tuple[int, int, str, str]:
        ci, ri = cand_c[k], cand_r[k]
        rec = recordings[ri]
        return abs(r_start[ri] - c_start[ci]), -rec.duration_ms, cdrs[ci].cdr_id, rec.recording_id

    used_c: set[int] = set()
    used_r: set[int] = set()
    out_c: list[int] = []
    out_r: list[int] = []
    for k in sorted(range(len(cand_c)), key=rank):
        ci, ri = cand_c[k], cand_r[k]
        if ci in used_c or ri in used_r:
            continue
        used_c.add(ci)
        used_r.add(ri)
        out_c.append(ci)
        out_r.append(ri)
    return out_c, out_r


def _group(traders: list[str]) -> dict[str, list[int]]:
    """Indices per trader id."""
    groups: dict[str, list[int]] = {}
    for i, trader in enumerate(traders):
        indices = groups.get(trader)
        if indices is None:
            groups[trader] = [i]
        else:
            indices.append(i)
    return groups


def _unset(size: int, used: list[int]) -> Iterator[int]:
    """The indices in range(size) not in `used`, ascending."""
    flags = bytearray(size)
    for i in used:
        flags[i] = 1
    return _zeros(flags)


def _zeros(flags: bytes | bytearray) -> Iterator[int]:
    """The positions of the zero bytes, ascending (a C-speed scan)."""
    i = flags.find(0)
    while i != -1:
        yield i
        i = flags.find(0, i + 1)


def _bump(counters: dict[str, Counter[Verdict]], name: str, verdict: Verdict) -> None:
    counter = counters.get(name)
    if counter is None:
        counter = counters[name] = Counter()
    counter[verdict] += 1
