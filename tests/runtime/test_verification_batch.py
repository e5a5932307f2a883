"""One verification pass (reconciler.runtime.verification.batch), table-driven on hand-built data:
`TopologyPlan.from_spec` (tolerances, target, traders, desks, exemptions), `build_report` (counts
per total, trader, collector and desk; triage; the period's edges; exemptions; pending calls;
sources; exit codes; clock skew) and `catch_up` against a scripted fake collector. Times are
epoch-ms ints; no network, no real time."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from reconciler.manifest.kinds.runtime import CollectorTopologySpec
from reconciler.runtime.verification import batch
from reconciler.runtime.verification.batch import TopologyPlan, build_report_and_pairs, catch_up
from reconciler.runtime.verification.collector import Collector, PollResult
from reconciler.runtime.verification.model import Cdr, Exemption, Recording, Tolerances, to_ms
from reconciler.runtime.verification.report import EXIT_FAIL, EXIT_OK, EXIT_REVIEW, SourceStatus, VerificationReport
from reconciler.runtime.verification.triage import Triage, TriageTag

DAY_MS = 86_400_000
PERIOD_START = to_ms(dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
PERIOD = (PERIOD_START, PERIOD_START + DAY_MS)
NOW = PERIOD_START + 3 * DAY_MS  # far after every call: every grace is over
LABELS = ("2026-11-21", "2026-11-21")
H9 = PERIOD_START + 9 * 3600_000  # 09:00Z on the period's day
GRACE_MS = 300_000


def _spec() -> CollectorTopologySpec:
    return CollectorTopologySpec.model_validate(
        {
            "dataSource": {"type": "bt-trading-enterprise", "switch": "ldn-iptrade-01"},
            "collectors": [
                {
                    "name": "col-a",
                    "endpoints": {
                        "primary": "wss://ts-a1.example:8443/wba",
                        "secondary": "wss://ts-a2.example:8443/wba",
                    },
                    "token": "env:TRADESENSE_TOKEN_A",
                    "pollInterval": "10s",
                    "traders": [
                        {"id": "T-1", "user": "ann.lee@acme.example", "turret": "TUR-1"},
                        {"id": "T-2", "user": "bob@acme.example", "turret": "TUR-2"},
                    ],
                },
                {
                    "name": "col-b",
                    "endpoints": {"primary": "wss://ts-b1.example:8443/wba"},
                    "token": "env:TRADESENSE_TOKEN_B",
                    "pollInterval": "1s",
                    "traders": [{"id": "T-3", "user": "cy@acme.example", "turret": "TUR-3"}],
                },
            ],
            "matching": {"startTolerance": "2s", "durationTolerance": "1s", "lateRecordingGrace": "5m"},
            "target": "99.9%",
            "exemptions": [
                {
                    "trader": "T-3",
                    "line": "L8",
                    "from": "2026-11-21T12:00:00Z",
                    "to": "2026-11-21T13:00:00Z",
                    "reason": "hoot-n-holler line, excluded by design",
                }
            ],
        }
    )


MEMBERS: dict[str, list[str]] = {
    "power-desk": ["ann.lee@acme.example"],
    "gas-desk": ["bob@acme.example", "ANN.LEE@acme.example"],
}
PLAN = TopologyPlan.from_spec("bt-trading-london", _spec(), MEMBERS)
COLLECTOR_OF = {"T-1": "col-a", "T-2": "col-a", "T-3": "col-b"}
OK_SOURCES = (SourceStatus("col-a", True, 0, "polled up to date"), SourceStatus("col-b", True, 0, "polled up to date"))


def cdr(cdr_id: str, trader: str, start_ms: int, duration_ms: int = 60_000, **overrides: Any) -> Cdr:
    fields: dict[str, Any] = {
        "cdr_id": cdr_id,
        "collector": COLLECTOR_OF.get(trader, "col-a"),
        "trader_id": trader,
        "turret": f"TUR-{trader[2:]}",
        "line": "L1",
        "direction": "out",
        "start_ms": start_ms,
        "duration_ms": duration_ms,
    }
    fields.update(overrides)
    return Cdr(**fields)


def rec(recording_id: str, trader: str, start_ms: int, duration_ms: int = 60_000) -> Recording:
    return Recording(recording_id, f"conv-{recording_id}", trader, start_ms, duration_ms)


def report(
    cdrs: Sequence[Cdr],
    recordings: Sequence[Recording],
    *,
    now_ms: int = NOW,
    triage: Mapping[str, Triage] | None = None,
    sources: Sequence[SourceStatus] = OK_SOURCES,
) -> VerificationReport:
    report, _ = build_report_and_pairs(
        PLAN,
        cdrs,
        recordings,
        period=PERIOD,
        now_ms=now_ms,
        triage=triage or {},
        sources=sources,
        labels=LABELS,
    )
    return report


def counts_of(rep: VerificationReport, group: str, name: str) -> dict[str, int]:
    figures = rep.total if group == "total" else next(f for f in getattr(rep, group) if f.name == name)
    return {key: value for key, value in figures.counts.items() if value}


def triage(key: str, tag: TriageTag) -> Triage:
    return Triage(key=key, tag=tag, note="checked with the desk", reviewer="alice", at="2026-11-22T08:00:00.000Z")


# -- TopologyPlan.from_spec ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param("name", "bt-trading-london", id="name-as-given"),
        pytest.param("switch", "ldn-iptrade-01", id="switch-from-dataSource"),
        pytest.param("tolerances", Tolerances(2_000, 1_000, 300_000), id="tolerances-in-ms"),
        pytest.param("collectors", ("col-a", "col-b"), id="collectors-in-manifest-order"),
        pytest.param(
            "traders_by_user",
            {"ann.lee@acme.example": "T-1", "bob@acme.example": "T-2", "cy@acme.example": "T-3"},
            id="traders-by-lower-cased-user",
        ),
        pytest.param(
            "desks",
            {"T-1": ("gas-desk", "power-desk"), "T-2": ("gas-desk",), "T-3": ("(unassigned)",)},
            id="desks-sorted-both-for-a-trader-on-two-queues-unassigned-for-none",
        ),
        pytest.param(
            "exemptions",
            (
                Exemption(
                    to_ms(dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)),
                    to_ms(dt.datetime(2026, 11, 21, 13, tzinfo=dt.UTC)),
                    "hoot-n-holler line, excluded by design",
                    trader_id="T-3",
                    line="L8",
                ),
            ),
            id="exemptions-in-epoch-ms",
        ),
    ],
)
def test_plan_from_spec(attribute: str, expected: object) -> None:
    assert getattr(PLAN, attribute) == expected


def test_plan_target_is_a_fraction_of_the_percentage() -> None:
    assert PLAN.target == pytest.approx(0.999)


def test_plan_margin_is_the_start_tolerance_plus_the_skew_allowance() -> None:
    assert PLAN.margin_ms == 2_000 + batch.SKEW_ALLOWANCE_MS


# -- build_report: counts per group ---------------------------------------------------------

# c1 verified (T-1), c2 not recorded (T-2), c3 partial (T-1, 30 s of 60 s), r4 a recording no CDR
# accounts for (T-2), c5 verified (T-3 on col-b).
MIXED_CDRS = [
    cdr("c1", "T-1", H9),
    cdr("c2", "T-2", H9 + 600_000),
    cdr("c3", "T-1", H9 + 1_200_000),
    cdr("c5", "T-3", H9 + 3_600_000),
]
MIXED_RECORDINGS = [
    rec("r1", "T-1", H9 + 500),
    rec("r3", "T-1", H9 + 1_200_000, 30_000),
    rec("r4", "T-2", H9 + 1_800_000),
    rec("r5", "T-3", H9 + 3_600_000),
]
MIXED = report(MIXED_CDRS, MIXED_RECORDINGS)


@pytest.mark.parametrize(
    ("group", "name", "expected"),
    [
        pytest.param(
            "total",
            "all",
            {"verified": 2, "not_recorded": 1, "partial": 1, "recorded_without_cdr": 1},
            id="total",
        ),
        pytest.param("traders", "T-1", {"verified": 1, "partial": 1}, id="trader-T-1-verified-and-partial"),
        pytest.param(
            "traders", "T-2", {"not_recorded": 1, "recorded_without_cdr": 1}, id="trader-T-2-gap-and-orphan-recording"
        ),
        pytest.param("traders", "T-3", {"verified": 1}, id="trader-T-3-verified"),
        pytest.param(
            "collectors",
            "col-a",
            {"verified": 1, "not_recorded": 1, "partial": 1},
            id="collector-a-calls-only-no-orphan-recording",
        ),
        pytest.param("collectors", "col-b", {"verified": 1}, id="collector-b"),
        pytest.param(
            "desks",
            "gas-desk",
            {"verified": 1, "not_recorded": 1, "partial": 1, "recorded_without_cdr": 1},
            id="desk-gas-has-T-1-and-T-2",
        ),
        pytest.param("desks", "power-desk", {"verified": 1, "partial": 1}, id="desk-power-has-T-1-too"),
        pytest.param("desks", "(unassigned)", {"verified": 1}, id="desk-unassigned-has-T-3"),
    ],
)
def test_counts_per_group(group: str, name: str, expected: dict[str, int]) -> None:
    assert counts_of(MIXED, group, name) == expected


def test_mixed_report_compliance_findings_and_metadata() -> None:
    assert MIXED.total.compliance == pytest.approx(2 / 4)
    assert [f.key for f in MIXED.findings] == ["not_recorded:c2", "partial:c3", "recorded_without_cdr:r4"]
    assert [f.severity for f in MIXED.findings] == ["critical", "major", "minor"]
    orphan = MIXED.findings[2]
    assert (orphan.collector, orphan.cdr_id, orphan.recording_id, orphan.conversation_id) == (
        None,
        None,
        "r4",
        "conv-r4",
    )
    assert MIXED.findings[1].desks == ("gas-desk", "power-desk")
    assert MIXED.findings[0].start == "2026-11-21T09:10:00.000Z"
    assert (MIXED.topology, MIXED.switch, MIXED.period_from, MIXED.period_to) == (
        "bt-trading-london",
        "ldn-iptrade-01",
        *LABELS,
    )
    assert MIXED.generated_at == "2026-11-24T00:00:00.000Z"
    assert MIXED.tolerances == {"start_ms": 2_000, "duration_ms": 1_000, "grace_ms": GRACE_MS}
    assert [d.name for d in MIXED.desks] == ["(unassigned)", "gas-desk", "power-desk"]


# -- build_report: triage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "tag", "total", "trader", "compliance", "excludes"),
    [
        pytest.param(
            "not_recorded:c2",
            TriageTag.FALSE_POSITIVE,
            {"verified": 1, "triaged": 1, "recorded_without_cdr": 1},
            {"triaged": 1, "recorded_without_cdr": 1},
            1.0,
            True,
            id="false-positive-moves-the-gap-to-triaged",
        ),
        pytest.param(
            "not_recorded:c2",
            TriageTag.MAINTENANCE_WINDOW,
            {"verified": 1, "triaged": 1, "recorded_without_cdr": 1},
            {"triaged": 1, "recorded_without_cdr": 1},
            1.0,
            True,
            id="maintenance-window-moves-the-gap-to-triaged",
        ),
        pytest.param(
            "not_recorded:c2",
            TriageTag.MISSING_RECORDING,
            {"verified": 1, "not_recorded": 1, "recorded_without_cdr": 1},
            {"not_recorded": 1, "recorded_without_cdr": 1},
            0.5,
            False,
            id="missing-recording-confirms-and-keeps-the-gap-counted",
        ),
        pytest.param(
            "recorded_without_cdr:r4",
            TriageTag.TEST_CALL,
            {"verified": 1, "not_recorded": 1, "triaged": 1},
            {"not_recorded": 1, "triaged": 1},
            0.5,
            True,
            id="test-call-moves-the-orphan-recording-to-triaged",
        ),
        pytest.param(
            "recorded_without_cdr:r4",
            TriageTag.MISSING_CDR,
            {"verified": 1, "not_recorded": 1, "recorded_without_cdr": 1},
            {"not_recorded": 1, "recorded_without_cdr": 1},
            0.5,
            False,
            id="missing-cdr-confirms-the-orphan-recording",
        ),
    ],
)
def test_triage_tags(
    key: str, tag: TriageTag, total: dict[str, int], trader: dict[str, int], compliance: float, excludes: bool
) -> None:
    cdrs = [cdr("c1", "T-1", H9), cdr("c2", "T-2", H9 + 600_000)]
    recordings = [rec("r1", "T-1", H9), rec("r4", "T-2", H9 + 1_800_000)]
    rep = report(cdrs, recordings, triage={key: triage(key, tag)})

    assert counts_of(rep, "total", "all") == total
    assert counts_of(rep, "traders", "T-2") == trader
    assert rep.total.compliance == pytest.approx(compliance)
    by_key = {f.key: f for f in rep.findings}
    assert set(by_key) == {"not_recorded:c2", "recorded_without_cdr:r4"}, "a triaged finding is still listed"
    info = by_key[key].triage
    assert info is not None
    assert (info.tag, info.note, info.reviewer, info.at, info.excludes) == (
        tag.value,
        "checked with the desk",
        "alice",
        "2026-11-22T08:00:00.000Z",
        excludes,
    )
    other = next(f for k, f in by_key.items() if k != key)
    assert other.triage is None


# -- build_report: the period's edges, foreign collectors, exemptions, pending ---------------


@pytest.mark.parametrize(
    ("start_ms", "reported"),
    [
        pytest.param(PERIOD[0] - 1, False, id="orphan-recording-1ms-before-the-period-is-left-to-the-previous-report"),
        pytest.param(PERIOD[0], True, id="orphan-recording-at-the-period-start-is-reported"),
        pytest.param(PERIOD[1] - 1, True, id="orphan-recording-at-the-last-ms-is-reported"),
        pytest.param(PERIOD[1], False, id="orphan-recording-at-the-period-end-is-left-to-the-next-report"),
    ],
)
def test_orphan_recording_is_reported_only_inside_the_period(start_ms: int, reported: bool) -> None:
    rep = report([], [rec("r9", "T-1", start_ms)])
    assert [f.key for f in rep.findings] == (["recorded_without_cdr:r9"] if reported else [])
    assert counts_of(rep, "total", "all") == ({"recorded_without_cdr": 1} if reported else {})


@pytest.mark.parametrize(
    ("call", "counted"),
    [
        pytest.param(cdr("c9", "T-1", PERIOD[0] - 1), False, id="cdr-1ms-before-the-period-ignored"),
        pytest.param(cdr("c9", "T-1", PERIOD[0]), True, id="cdr-at-the-period-start-counted"),
        pytest.param(cdr("c9", "T-1", PERIOD[1] - 1), True, id="cdr-at-the-last-ms-counted"),
        pytest.param(cdr("c9", "T-1", PERIOD[1]), False, id="cdr-at-the-period-end-ignored"),
        pytest.param(cdr("c9", "T-1", H9, collector="col-z"), False, id="cdr-of-a-collector-not-in-the-plan-ignored"),
    ],
)
def test_only_cdrs_of_the_period_and_the_plan_count(call: Cdr, counted: bool) -> None:
    rep = report([call], [])
    assert counts_of(rep, "total", "all") == ({"not_recorded": 1} if counted else {})
    assert [f.key for f in rep.findings] == (["not_recorded:c9"] if counted else [])
    assert {s.collector: s.cdrs for s in rep.sources} == {"col-a": 1 if counted else 0, "col-b": 0}
    assert {f.name for f in rep.collectors} == {"col-a", "col-b"}, "only the plan's collectors have figures"


@pytest.mark.parametrize(
    ("call", "verdict"),
    [
        pytest.param(cdr("c7", "T-3", H9 + 3 * 3600_000, line="L8"), "exempt", id="exempt-trader-line-in-window"),
        pytest.param(cdr("c7", "T-3", H9 + 3 * 3600_000, line="L1"), "not_recorded", id="other-line-not-exempt"),
        pytest.param(cdr("c7", "T-3", H9 + 4 * 3600_000, line="L8"), "not_recorded", id="window-end-is-exclusive"),
        pytest.param(cdr("c7", "T-3", H9 + 3 * 3600_000 - 1, line="L8"), "not_recorded", id="before-the-window"),
    ],
)
def test_exemptions(call: Cdr, verdict: str) -> None:
    rep = report([call], [])
    assert counts_of(rep, "total", "all") == {verdict: 1}
    assert [(f.key, f.verdict) for f in rep.findings] == [(f"{verdict}:c7", verdict)]
    if verdict == "exempt":
        assert rep.total.compliance is None, "an exempt call is not in compliance"
        assert rep.findings[0].severity == "ok"
        assert rep.exit_code() == EXIT_OK
        assert rep.untriaged == ()


@pytest.mark.parametrize(
    ("now_ms", "verdict"),
    [
        pytest.param(H9 + 60_000 + GRACE_MS - 1, "pending", id="within-grace-pending"),
        pytest.param(H9 + 60_000 + GRACE_MS, "not_recorded", id="grace-over-not-recorded"),
    ],
)
def test_a_call_without_recording_is_pending_within_the_grace(now_ms: int, verdict: str) -> None:
    rep = report([cdr("c1", "T-1", H9)], [], now_ms=now_ms)
    assert counts_of(rep, "total", "all") == {verdict: 1}
    assert counts_of(rep, "traders", "T-1") == {verdict: 1}
    assert counts_of(rep, "collectors", "col-a") == {verdict: 1}
    assert rep.exit_code() == (EXIT_OK if verdict == "pending" else EXIT_FAIL)


def test_a_recording_within_the_grace_is_pending_not_a_finding() -> None:
    rep = report([], [rec("r1", "T-1", H9)], now_ms=H9 + 60_000 + GRACE_MS - 1)
    assert counts_of(rep, "total", "all") == {"pending": 1}
    assert rep.findings == ()


def test_sources_get_the_period_cdr_count_of_their_collector() -> None:
    sources = [
        SourceStatus("col-a", True, 0, "polled up to date"),
        SourceStatus("col-b", False, 0, "collector_down: x"),
    ]
    rep = report([*MIXED_CDRS, cdr("old", "T-1", PERIOD[0] - DAY_MS)], MIXED_RECORDINGS, sources=sources)
    assert [(s.collector, s.ok, s.cdrs, s.detail) for s in rep.sources] == [
        ("col-a", True, 3, "polled up to date"),
        ("col-b", False, 1, "collector_down: x"),
    ]


# -- build_report: exit code ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cdrs", "recordings", "sources", "code"),
    [
        pytest.param([cdr("c1", "T-1", H9)], [rec("r1", "T-1", H9)], OK_SOURCES, EXIT_OK, id="all-verified-0"),
        pytest.param(
            [cdr("c1", "T-1", H9), cdr("c2", "T-2", H9)],
            [rec("r1", "T-1", H9)],
            OK_SOURCES,
            EXIT_FAIL,
            id="untriaged-not-recorded-3",
        ),
        pytest.param(
            [cdr("c1", "T-1", H9)],
            [rec("r1", "T-1", H9), rec("r2", "T-2", H9)],
            OK_SOURCES,
            EXIT_REVIEW,
            id="untriaged-recording-without-cdr-2",
        ),
        pytest.param(
            [cdr("c1", "T-1", H9)],
            [rec("r1", "T-1", H9)],
            (OK_SOURCES[0], SourceStatus("col-b", False, 0, "collector_down")),
            EXIT_REVIEW,
            id="a-source-not-fully-read-2",
        ),
    ],
)
def test_exit_code(cdrs: list[Cdr], recordings: list[Recording], sources: Sequence[SourceStatus], code: int) -> None:
    assert report(cdrs, recordings, sources=sources).exit_code() == code


# -- build_report: clock skew ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "verified", "skew"),
    [
        pytest.param(25, 25, {"col-a": 30_000}, id="25-pairs-30s-behind-measured-and-verified"),
        pytest.param(20, 20, {"col-a": 30_000}, id="20-pairs-just-enough-evidence"),
        pytest.param(19, 0, {}, id="19-pairs-too-little-evidence-no-skew"),
    ],
)
def test_clock_skew_is_measured_and_applied(pairs: int, verified: int, skew: dict[str, int]) -> None:
    starts = [H9 + i * 300_000 for i in range(pairs)]  # one call every 5 minutes
    cdrs = [cdr(f"c{i}", "T-1", start - 30_000) for i, start in enumerate(starts)]  # switch 30 s behind
    recordings = [rec(f"r{i}", "T-1", start) for i, start in enumerate(starts)]
    rep = report(cdrs, recordings)
    assert dict(rep.skew_ms) == skew
    assert rep.total.counts.get("verified", 0) == verified
    assert rep.total.counts.get("not_recorded", 0) == pairs - verified
    assert counts_of(rep, "collectors", "col-a").get("verified", 0) == verified


# -- catch_up -------------------------------------------------------------------------------


@dataclass
class ScriptedCollector:
    """A stand-in for Collector: `poll_once` plays `script` (a result and an optional alert the
    real collector's callback would have appended)."""

    name: str
    script: list[tuple[PollResult, tuple[str, str] | None]]
    alerts: list[tuple[str, str]]
    polls: int = 0
    _left: list[tuple[PollResult, tuple[str, str] | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._left = list(self.script)

    async def poll_once(self) -> PollResult:
        self.polls += 1
        result, alert = self._left.pop(0) if len(self._left) > 1 else self._left[0]
        if alert is not None:
            self.alerts.append(alert)
        return result


MORE = PollResult("primary", received=100, new=100, more=True)
DONE = PollResult("primary", received=3, new=3)
DOWN = PollResult(None)
OLD_ALERT = ("ha_mismatch", "from an earlier pass")


@pytest.mark.parametrize(
    ("script", "polls", "ok", "detail_has", "detail_lacks"),
    [
        pytest.param(
            [(MORE, None), (MORE, None), (DONE, None)], 3, True, "polled up to date", None, id="more-more-done-ok"
        ),
        pytest.param([(DONE, None)], 1, True, "polled up to date", None, id="done-at-once-ok"),
        pytest.param(
            [(MORE, None), (DOWN, ("collector_down", "no member can be polled"))],
            2,
            False,
            "collector_down: no member can be polled (the CDRs stored so far are used)",
            OLD_ALERT[1],
            id="down-mid-way-not-ok-with-the-new-alert-only",
        ),
        pytest.param(
            [(DOWN, ("unauthorized", "token refused")), (DONE, None)],
            1,
            False,
            "unauthorized: token refused",
            OLD_ALERT[1],
            id="down-at-once-stops-polling",
        ),
        pytest.param(
            [(DOWN, None)], 1, False, "no member could be polled", OLD_ALERT[1], id="down-without-an-alert-says-so"
        ),
        pytest.param([(MORE, None)], 3, False, "still more after 3 polls", None, id="never-done-stops-at-max-polls"),
    ],
)
def test_catch_up(
    monkeypatch: pytest.MonkeyPatch,
    script: list[tuple[PollResult, tuple[str, str] | None]],
    polls: int,
    ok: bool,
    detail_has: str,
    detail_lacks: str | None,
) -> None:
    monkeypatch.setattr(batch, "MAX_POLLS", 3)
    alerts: list[tuple[str, str]] = [OLD_ALERT]
    fake = ScriptedCollector("col-a", script, alerts)

    status = asyncio.run(asyncio.wait_for(catch_up(cast(Collector, fake), alerts), 5))

    assert (status.collector, status.ok, status.cdrs) == ("col-a", ok, 0)
    assert detail_has in status.detail
    if detail_lacks is not None:
        assert detail_lacks not in status.detail
    assert fake.polls == polls
