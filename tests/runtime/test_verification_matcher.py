"""The capture-verification matcher, table-driven: every verdict, both sides of every tolerance
edge, turret/line compatibility, exemptions, back-to-back and overlapping calls, clock skew,
compliance % and its rollup, determinism. `now_ms` is a parameter: no clock, no sleeping."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from reconciler.runtime.verification.compliance import UNASSIGNED, compliance, rollup
from reconciler.runtime.verification.matcher import Finding, MatchResult, match
from reconciler.runtime.verification.model import SEVERITY, Cdr, Exemption, Recording, Tolerances, Verdict
from reconciler.runtime.verification.skew import estimate_skew

BASE = 1_790_000_000_000  # epoch ms; every time below is an offset from it
TOL = Tolerances(start_ms=2_000, duration_ms=1_000, grace_ms=300_000)
LATE = BASE + 100_000_000  # long after every grace in these tables
CALL = 60_000  # default call length; a default call's grace ends at BASE + 360_000
V = Verdict


def cdr(
    cdr_id: str = "c1",
    start: int = 0,
    dur: int = CALL,
    *,
    trader: str = "T1",
    turret: str = "TUR1",
    line: str = "L1",
    collector: str = "col-a",
) -> Cdr:
    return Cdr(cdr_id, collector, trader, turret, line, "out", BASE + start, dur)


def rec(
    recording_id: str = "r1",
    start: int = 0,
    dur: int = CALL,
    *,
    trader: str = "T1",
    turret: str | None = None,
    line: str | None = None,
) -> Recording:
    return Recording(recording_id, f"conv-{recording_id}", trader, BASE + start, dur, turret, line)


def outcomes(result: MatchResult) -> dict[str, str]:
    """cdr_id -> "verified/<recording_id>", "partial/<recording_id>" or its verdict; recording_id
    -> its verdict for a recording without a CDR ("pending" while in grace)."""
    out = {cdr_id: f"verified/{rec_id}" for cdr_id, rec_id in result.verified_pairs()}
    for finding in result.findings:
        if finding.verdict is Verdict.PARTIAL:
            assert finding.cdr is not None and finding.recording is not None
            out[finding.cdr.cdr_id] = f"partial/{finding.recording.recording_id}"
        elif finding.cdr is not None:
            out[finding.cdr.cdr_id] = finding.verdict.value
        else:
            assert finding.recording is not None
            out[finding.recording.recording_id] = finding.verdict.value
    out.update(dict.fromkeys(result.pending_recording_ids, "pending"))
    return out


# (id, cdrs, recordings, now_ms, expected outcomes)
ONE_PAIR_CASES = [
    ("same start and length: verified", [cdr()], [rec()], LATE, {"c1": "verified/r1"}),
    ("start +tol-1: verified", [cdr()], [rec(start=1_999)], LATE, {"c1": "verified/r1"}),
    ("start exactly +tol: verified", [cdr()], [rec(start=2_000)], LATE, {"c1": "verified/r1"}),
    (
        "start +tol+1: no match both ways",
        [cdr()],
        [rec(start=2_001)],
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    ("start exactly -tol: verified", [cdr()], [rec(start=-2_000)], LATE, {"c1": "verified/r1"}),
    (
        "start -tol-1: no match both ways",
        [cdr()],
        [rec(start=-2_001)],
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    ("recording longer than call: verified", [cdr()], [rec(dur=CALL + 5_000)], LATE, {"c1": "verified/r1"}),
    (
        "short by exactly the duration tolerance: verified",
        [cdr()],
        [rec(dur=CALL - 1_000)],
        LATE,
        {"c1": "verified/r1"},
    ),
    ("short by tolerance+1: partial", [cdr()], [rec(dur=CALL - 1_001)], LATE, {"c1": "partial/r1"}),
    ("short by a lot: partial", [cdr()], [rec(dur=1_000)], LATE, {"c1": "partial/r1"}),
    ("no recording, grace over: not recorded", [cdr()], [], LATE, {"c1": "not_recorded"}),
    ("no recording, 1 ms before grace ends: pending", [cdr()], [], BASE + 359_999, {"c1": "pending"}),
    ("no recording, exactly when grace ends: not recorded", [cdr()], [], BASE + 360_000, {"c1": "not_recorded"}),
    ("no CDR, grace over: recorded without CDR", [], [rec()], LATE, {"r1": "recorded_without_cdr"}),
    ("no CDR, 1 ms before grace ends: pending recording", [], [rec()], BASE + 359_999, {"r1": "pending"}),
    (
        "no CDR, exactly when grace ends: recorded without CDR",
        [],
        [rec()],
        BASE + 360_000,
        {"r1": "recorded_without_cdr"},
    ),
    ("matched before grace ends: verified, not pending", [cdr()], [rec()], BASE + 1, {"c1": "verified/r1"}),
    ("recording with the same turret and line", [cdr()], [rec(turret="TUR1", line="L1")], LATE, {"c1": "verified/r1"}),
    ("recording with turret only", [cdr()], [rec(turret="TUR1")], LATE, {"c1": "verified/r1"}),
    ("recording with line only", [cdr()], [rec(line="L1")], LATE, {"c1": "verified/r1"}),
    (
        "turret mismatch prevents the match",
        [cdr()],
        [rec(turret="TUR9", line="L1")],
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    (
        "line mismatch prevents the match",
        [cdr()],
        [rec(turret="TUR1", line="L2")],
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    (
        "line mismatch falls back to the compatible recording further away",
        [cdr()],
        [rec("r1", 10, line="L2"), rec("r2", 1_500, line="L1")],
        LATE,
        {"c1": "verified/r2", "r1": "recorded_without_cdr"},
    ),
    (
        "another trader's recording never matches",
        [cdr()],
        [rec(trader="T2")],
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
]


@pytest.mark.parametrize(
    ("cdrs", "recordings", "now_ms", "expected"), [c[1:] for c in ONE_PAIR_CASES], ids=[c[0] for c in ONE_PAIR_CASES]
)
def test_one_pair(cdrs: list[Cdr], recordings: list[Recording], now_ms: int, expected: dict[str, str]) -> None:
    result = match(cdrs, recordings, TOL, now_ms=now_ms)
    assert outcomes(result) == expected


# A trader's calls that start close together, or follow each other: (id, cdrs, recordings, expected)
MANY_CASES = [
    (
        "back-to-back calls each get their own recording",
        [cdr("c1", 0, 60_000), cdr("c2", 60_000, 30_000), cdr("c3", 90_000, 45_000)],
        [rec("r1", 300, 59_900), rec("r2", 60_250, 30_000), rec("r3", 89_500, 45_500)],
        {"c1": "verified/r1", "c2": "verified/r2", "c3": "verified/r3"},
    ),
    (
        "back-to-back calls with the middle one unrecorded",
        [cdr("c1", 0, 60_000), cdr("c2", 60_000, 30_000), cdr("c3", 90_000, 45_000)],
        [rec("r1", 300, 59_900), rec("r3", 89_500, 45_500)],
        {"c1": "verified/r1", "c2": "not_recorded", "c3": "verified/r3"},
    ),
    (
        "overlapping calls on two lines: nearest start first, not first in the window",
        # r2 (c2's, 900) starts before r1 (c1's, 1200): taking the first recording in c1's
        # window would pair c1-r2 and c2-r1 and report both partial.
        [cdr("c1", 0, 60_000, line="L1"), cdr("c2", 1_000, 20_000, line="L2")],
        [rec("r1", 1_200, 60_000), rec("r2", 900, 20_000)],
        {"c1": "verified/r1", "c2": "verified/r2"},
    ),
    (
        "overlapping calls: lines on the recordings decide",
        [cdr("c1", 0, line="L1"), cdr("c2", 100, line="L2")],
        [rec("r1", 100, line="L1"), rec("r2", 0, line="L2")],
        {"c1": "verified/r1", "c2": "verified/r2"},
    ),
    (
        "two recordings equally near one call: the longer one wins",
        [cdr()],
        [rec("r1", -500, CALL), rec("r2", 500, CALL + 1)],
        {"c1": "verified/r2", "r1": "recorded_without_cdr"},
    ),
    (
        "two recordings equally near and equally long: the lower recording_id wins",
        [cdr()],
        [rec("r2", 500), rec("r1", -500)],
        {"c1": "verified/r1", "r2": "recorded_without_cdr"},
    ),
    (
        "two calls equally near one recording: the lower cdr_id wins",
        [cdr("c2", 500, line="L2"), cdr("c1", -500, line="L1")],
        [rec("r1", 0)],
        {"c1": "verified/r1", "c2": "not_recorded"},
    ),
    (
        "one recording, two calls: the nearer call takes it",
        [cdr("c1", 0), cdr("c2", 1_800, line="L2")],
        [rec("r1", 1_500)],
        {"c1": "not_recorded", "c2": "verified/r1"},
    ),
    (
        "same trader, calls far apart, recordings shuffled",
        [cdr(f"c{k}", k * 120_000) for k in range(5)],
        [rec(f"r{k}", k * 120_000 + 700) for k in (3, 0, 4, 1, 2)],
        {f"c{k}": f"verified/r{k}" for k in range(5)},
    ),
    (
        "two traders at the same moment",
        [cdr("c1", 0, trader="T1"), cdr("c2", 0, trader="T2")],
        [rec("r2", 10, trader="T2"), rec("r1", 20, trader="T1")],
        {"c1": "verified/r1", "c2": "verified/r2"},
    ),
]


@pytest.mark.parametrize(
    ("cdrs", "recordings", "expected"), [c[1:] for c in MANY_CASES], ids=[c[0] for c in MANY_CASES]
)
def test_many_calls(cdrs: list[Cdr], recordings: list[Recording], expected: dict[str, str]) -> None:
    result = match(cdrs, recordings, TOL, now_ms=LATE)
    assert outcomes(result) == expected
    # The same outcome whatever the input order.
    assert outcomes(match(cdrs[::-1], recordings[::-1], TOL, now_ms=LATE)) == expected


def ex(start: int, end: int, *, trader: str | None = None, line: str | None = None) -> Exemption:
    return Exemption(BASE + start, BASE + end, "maintenance", trader_id=trader, line=line)


# (id, exemptions, now_ms, expected verdict of c1 = cdr() unrecorded: trader T1, line L1, start 0)
EXEMPTION_CASES = [
    ("trader exempt", [ex(-1_000, 1_000, trader="T1")], LATE, "exempt"),
    ("another trader exempt", [ex(-1_000, 1_000, trader="T2")], LATE, "not_recorded"),
    ("line exempt (any trader)", [ex(-1_000, 1_000, line="L1")], LATE, "exempt"),
    ("another line exempt", [ex(-1_000, 1_000, line="L2")], LATE, "not_recorded"),
    ("trader and line both match", [ex(-1_000, 1_000, trader="T1", line="L1")], LATE, "exempt"),
    ("trader matches, line does not", [ex(-1_000, 1_000, trader="T1", line="L2")], LATE, "not_recorded"),
    ("everyone exempt", [ex(-1_000, 1_000)], LATE, "exempt"),
    ("window starts exactly at the call: covered", [ex(0, 1_000, trader="T1")], LATE, "exempt"),
    ("window starts 1 ms after the call: not covered", [ex(1, 1_000, trader="T1")], LATE, "not_recorded"),
    ("window ends exactly at the call: not covered (half-open)", [ex(-1_000, 0, trader="T1")], LATE, "not_recorded"),
    ("window ends 1 ms after the call starts: covered", [ex(-1_000, 1, trader="T1")], LATE, "exempt"),
    ("exempt beats pending", [ex(-1_000, 1_000, trader="T1")], BASE + 1, "exempt"),
    ("one of several exemptions covers", [ex(5_000, 9_000), ex(-1_000, 1_000, line="L1")], LATE, "exempt"),
]


@pytest.mark.parametrize(
    ("exemptions", "now_ms", "expected"), [c[1:] for c in EXEMPTION_CASES], ids=[c[0] for c in EXEMPTION_CASES]
)
def test_exemptions(exemptions: list[Exemption], now_ms: int, expected: str) -> None:
    result = match([cdr()], [], TOL, now_ms=now_ms, exemptions=exemptions)
    assert outcomes(result) == {"c1": expected}
    if expected == "exempt":
        assert result.findings[0].detail == "exempt: maintenance"


def test_an_exemption_does_not_hide_a_recorded_call() -> None:
    result = match([cdr()], [rec()], TOL, now_ms=LATE, exemptions=[ex(-1_000, 1_000)])
    assert outcomes(result) == {"c1": "verified/r1"}


# (id, skew_ms, recording start, now_ms, expected): CDR c1 on col-a, start 0, 60 s
SKEW_CASES = [
    (
        "7 s late recorder, no skew given: no match",
        None,
        7_000,
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    ("7 s late recorder, skew 7 s: verified", {"col-a": 7_000}, 7_000, LATE, {"c1": "verified/r1"}),
    ("skew 5 s puts the start exactly at tolerance", {"col-a": 5_000}, 7_000, LATE, {"c1": "verified/r1"}),
    (
        "skew 4999 ms leaves it 1 ms outside",
        {"col-a": 4_999},
        7_000,
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    (
        "skew of another collector does not apply",
        {"col-b": 7_000},
        7_000,
        LATE,
        {"c1": "not_recorded", "r1": "recorded_without_cdr"},
    ),
    ("negative skew", {"col-a": -7_000}, -7_000, LATE, {"c1": "verified/r1"}),
    (
        "grace runs on the recorder clock: 1 ms before",
        {"col-a": 7_000},
        900_000,
        BASE + 366_999,
        {"c1": "pending", "r1": "pending"},
    ),
    (
        "grace runs on the recorder clock: exactly at its end",
        {"col-a": 7_000},
        900_000,
        BASE + 367_000,
        {"c1": "not_recorded", "r1": "pending"},
    ),
]


@pytest.mark.parametrize(
    ("skew_ms", "rec_start", "now_ms", "expected"), [c[1:] for c in SKEW_CASES], ids=[c[0] for c in SKEW_CASES]
)
def test_skew(skew_ms: dict[str, int] | None, rec_start: int, now_ms: int, expected: dict[str, str]) -> None:
    result = match([cdr()], [rec(start=rec_start)], TOL, now_ms=now_ms, skew_ms=skew_ms)
    assert outcomes(result) == expected


def skewed_day(skews: dict[str, int], seed: int = 3) -> tuple[list[Cdr], list[Recording]]:
    """2 traders per collector, 40 calls each 30-120 s apart; recordings on the recorder's
    clock (the collector's skew added) with ±500 ms jitter."""
    rng = random.Random(seed)
    cdrs: list[Cdr] = []
    recordings: list[Recording] = []
    for n, collector in enumerate(skews):
        for t in range(2):
            trader = f"T{n}{t}"
            start = rng.randint(0, 60_000)
            for k in range(40):
                dur = rng.randint(5_000, 200_000)
                cdrs.append(cdr(f"{trader}-c{k}", start, dur, trader=trader, collector=collector))
                jitter = rng.randint(-500, 500)
                recordings.append(rec(f"{trader}-r{k}", start + skews[collector] + jitter, dur, trader=trader))
                start += rng.randint(30_000, 120_000)
    return cdrs, recordings


def test_estimate_skew_finds_a_planted_7s_skew_and_then_everything_verifies() -> None:
    cdrs, recordings = skewed_day({"col-a": 7_000, "col-b": 0, "col-c": -3_000})
    estimate = estimate_skew(cdrs, recordings)
    assert abs(estimate["col-a"] - 7_000) <= 500
    assert abs(estimate["col-b"]) <= 500
    assert abs(estimate["col-c"] + 3_000) <= 500

    blind = match(cdrs, recordings, TOL, now_ms=LATE)
    assert blind.per_collector["col-a"][Verdict.VERIFIED] == 0
    assert blind.per_collector["col-a"][Verdict.NOT_RECORDED] == 80

    result = match(cdrs, recordings, TOL, now_ms=LATE, skew_ms=estimate)
    assert result.counts == Counter({Verdict.VERIFIED: len(cdrs)})
    assert result.findings == ()
    assert result.compliance == 1.0


@pytest.mark.parametrize(
    ("min_pairs", "window_ms", "expected"),
    [
        (80, 60_000, 7_000),  # exactly min_pairs pairs (2 traders x 40 calls): estimated
        (81, 60_000, 0),  # one short of min_pairs: 0
        (20, 6_000, 0),  # the recorder is 7 s off, beyond a 6 s window: no pairs
    ],
    ids=["exactly min_pairs", "one below min_pairs", "offsets beyond the window"],
)
def test_estimate_skew_evidence_limits(min_pairs: int, window_ms: int, expected: int) -> None:
    cdrs, recordings = skewed_day({"col-a": 7_000}, seed=5)
    recordings = [
        Recording(r.recording_id, r.conversation_id, r.trader_id, cdrs[k].start_ms + 7_000, r.duration_ms)
        for k, r in enumerate(recordings)
    ]  # no jitter: every offset is exactly 7 s
    assert estimate_skew(cdrs, recordings, window_ms=window_ms, min_pairs=min_pairs) == {"col-a": expected}


def test_estimate_skew_of_a_collector_without_recordings_is_zero() -> None:
    assert estimate_skew([cdr(collector="col-z")], []) == {"col-z": 0}


def test_findings_carry_severity_key_and_detail_sorted_by_key() -> None:
    cdrs = [cdr("c3", 0, line="L3"), cdr("c1", 200_000), cdr("c2", 400_000)]
    recordings = [rec("r3", 0, 10_000), rec("r9", 600_000)]
    result = match(cdrs, recordings, TOL, now_ms=LATE)
    assert [f.key for f in result.findings] == [
        "not_recorded:c1",
        "not_recorded:c2",
        "partial:c3",
        "recorded_without_cdr:r9",
    ]
    for finding in result.findings:
        assert isinstance(finding, Finding)
        assert finding.severity == SEVERITY[finding.verdict]
        assert finding.detail
    partial = result.findings[2]
    assert partial.cdr is cdrs[0] and partial.recording is recordings[0]
    assert "50000 ms short" in partial.detail
    assert {f.severity for f in result.findings} == {"critical", "major", "minor"}


def test_counters_per_verdict_trader_and_collector() -> None:
    cdrs = [
        cdr("a1", 0, trader="A", collector="col-a"),
        cdr("a2", 100_000, trader="A", collector="col-a"),
        cdr("a3", 200_000, trader="A", collector="col-a"),
        cdr("b1", 0, trader="B", collector="col-b"),
        cdr("b2", 100_000, trader="B", collector="col-b"),
    ]
    recordings = [
        rec("ra1", 0, trader="A"),
        rec("ra2", 100_000, 1_000, trader="A"),  # partial
        rec("rb1", 0, trader="B"),
        rec("rb9", 50_000, trader="B"),  # no CDR, grace over
        rec("rb8", 99_000_000, trader="B"),  # no CDR, within grace: pending
    ]
    now = BASE + 99_000_001
    result = match(cdrs, recordings, TOL, now_ms=now, exemptions=[ex(199_000, 201_000, trader="A")])
    assert result.counts == Counter(
        {V.VERIFIED: 2, V.PARTIAL: 1, V.EXEMPT: 1, V.NOT_RECORDED: 1, V.RECORDED_WITHOUT_CDR: 1, V.PENDING: 1}
    )
    assert result.per_trader == {
        "A": Counter({V.VERIFIED: 1, V.PARTIAL: 1, V.EXEMPT: 1}),
        "B": Counter({V.VERIFIED: 1, V.NOT_RECORDED: 1, V.RECORDED_WITHOUT_CDR: 1, V.PENDING: 1}),
    }
    assert result.per_collector == {  # calls only
        "col-a": Counter({V.VERIFIED: 1, V.PARTIAL: 1, V.EXEMPT: 1}),
        "col-b": Counter({V.VERIFIED: 1, V.NOT_RECORDED: 1}),
    }
    assert result.pending_recording_ids == ("rb8",)
    assert "pending:rb8" not in {f.key for f in result.findings}
    assert sorted(result.verified_pairs()) == [("a1", "ra1"), ("b1", "rb1")]
    assert result.compliance == pytest.approx(2 / 4)


COMPLIANCE_CASES = [
    ("all verified", {V.VERIFIED: 10}, 1.0),
    ("98 verified, 1 partial, 1 not recorded", {V.VERIFIED: 98, V.PARTIAL: 1, V.NOT_RECORDED: 1}, 0.98),
    (
        "exempt, pending and recorded-without-CDR do not count",
        {V.VERIFIED: 3, V.NOT_RECORDED: 1, V.EXEMPT: 50, V.PENDING: 7, V.RECORDED_WITHOUT_CDR: 9},
        0.75,
    ),
    ("only not recorded", {V.NOT_RECORDED: 4}, 0.0),
    ("only partial", {V.PARTIAL: 2}, 0.0),
    ("nothing", {}, None),
    ("only exempt and pending: nothing counts", {V.EXEMPT: 5, V.PENDING: 2, V.RECORDED_WITHOUT_CDR: 1}, None),
]


@pytest.mark.parametrize(
    ("counters", "expected"), [c[1:] for c in COMPLIANCE_CASES], ids=[c[0] for c in COMPLIANCE_CASES]
)
def test_compliance(counters: dict[Verdict, int], expected: float | None) -> None:
    assert compliance(Counter(counters)) == (pytest.approx(expected) if expected is not None else None)


def test_rollup_sums_traders_per_group() -> None:
    per_trader = {
        "T1": Counter({V.VERIFIED: 9, V.NOT_RECORDED: 1}),
        "T2": Counter({V.VERIFIED: 10, V.PENDING: 3}),
        "T3": Counter({V.PARTIAL: 1, V.RECORDED_WITHOUT_CDR: 2}),
        "T4": Counter({V.EXEMPT: 4}),
    }
    groups = {"T1": "rates", "T2": "rates", "T3": "fx"}
    rolled = rollup(per_trader, groups)
    assert list(rolled) == sorted(["rates", "fx", UNASSIGNED])
    assert rolled["rates"] == Counter({V.VERIFIED: 19, V.NOT_RECORDED: 1, V.PENDING: 3})
    assert rolled["fx"] == Counter({V.PARTIAL: 1, V.RECORDED_WITHOUT_CDR: 2})
    assert rolled[UNASSIGNED] == Counter({V.EXEMPT: 4})
    assert compliance(rolled["rates"]) == pytest.approx(0.95)
    assert compliance(rolled["fx"]) == 0.0
    assert compliance(rolled[UNASSIGNED]) is None
    assert per_trader["T1"] == Counter({V.VERIFIED: 9, V.NOT_RECORDED: 1})  # inputs untouched


def crowded_day(seed: int) -> tuple[list[Cdr], list[Recording]]:
    """Calls of 3 traders starting 0.5-8 s apart (many windows overlap), some recordings missing,
    short, carrying lines, or orphans: a stress for tie-breaking and one-to-one pairing."""
    rng = random.Random(seed)
    cdrs: list[Cdr] = []
    recordings: list[Recording] = []
    for t in range(3):
        start = 0
        for k in range(150):
            line = f"L{rng.randint(1, 3)}"
            dur = rng.randint(1_000, 90_000)
            cdrs.append(cdr(f"T{t}-c{k:03d}", start, dur, trader=f"T{t}", line=line))
            roll = rng.random()
            if roll > 0.1:
                rec_dur = max(100, dur - rng.randint(-1_500, 3_000))
                rec_line = line if roll > 0.5 else None
                recordings.append(
                    rec(f"T{t}-r{k:03d}", start + rng.randint(-1_900, 1_900), rec_dur, trader=f"T{t}", line=rec_line)
                )
            if roll < 0.05:
                recordings.append(rec(f"T{t}-x{k:03d}", start + rng.randint(-5_000, 5_000), trader=f"T{t}"))
            start += rng.randint(500, 8_000)
    return cdrs, recordings


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deterministic_whatever_the_input_order(seed: int) -> None:
    cdrs, recordings = crowded_day(seed)
    now = BASE + 1_000_000  # some calls still within grace
    first = match(cdrs, recordings, TOL, now_ms=now)
    again = match(cdrs, recordings, TOL, now_ms=now)
    assert first == again
    rng = random.Random(seed)
    for _ in range(3):
        c, r = cdrs[:], recordings[:]
        rng.shuffle(c)
        rng.shuffle(r)
        shuffled = match(tuple(c), tuple(r), TOL, now_ms=now)
        assert shuffled.counts == first.counts
        assert shuffled.findings == first.findings
        assert shuffled.pending_recording_ids == first.pending_recording_ids
        assert shuffled.per_trader == first.per_trader
        assert sorted(shuffled.verified_pairs()) == sorted(first.verified_pairs())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_call_and_recording_is_accounted_for_once(seed: int) -> None:
    cdrs, recordings = crowded_day(seed)
    result = match(cdrs, recordings, TOL, now_ms=BASE + 1_000_000)
    by_cdr = {c.cdr_id: c for c in cdrs}
    by_rec = {r.recording_id: r for r in recordings}
    paired = list(result.verified_pairs()) + [
        (f.cdr.cdr_id, f.recording.recording_id) for f in result.findings if f.cdr and f.recording
    ]
    cdr_side = [c for c, _ in paired] + [f.cdr.cdr_id for f in result.findings if f.cdr and not f.recording]
    rec_side = (
        [r for _, r in paired]
        + [f.recording.recording_id for f in result.findings if f.recording and not f.cdr]
        + list(result.pending_recording_ids)
    )
    assert sorted(cdr_side) == sorted(by_cdr)
    assert sorted(rec_side) == sorted(by_rec)
    for cdr_id, rec_id in paired:  # every pair is a legal one
        c, r = by_cdr[cdr_id], by_rec[rec_id]
        assert c.trader_id == r.trader_id and abs(c.start_ms - r.start_ms) <= TOL.start_ms
        assert r.line is None or r.line == c.line
    assert sum(result.counts.values()) == len(cdrs) + len(recordings) - len(paired)
