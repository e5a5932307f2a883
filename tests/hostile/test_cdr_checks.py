"""Issue 17, class 12: inputs from the switch are checked.

A CDR whose end was before its start was accepted; a CDR id seen again with different fields
was dropped silently; one malformed CDR failed every poll of its collector. Now every field is
checked (cdr_check), a bad CDR is a rejection (stored once, alerted, a finding of `recon
verify`), a changed re-send is a `cdr_changed` anomaly (the first version kept), and an
identical re-send stays idempotent. End to end through the CLI on the sandbox: a TradeSense
server whose clock jumps (its skew knob, then a restart so recent CDRs are read again) changes
its story, and then sends times from the far future; `recon verify` names each CDR (exit 2),
a second run adds nothing, and `recon runtime --once` alerts both kinds.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Recon
from fake_wba import BASE_MS, TOKEN, FakeWba, iso, make_cdr
from test_cli_genesys import Org, ok
from test_cli_runtime import desk  # noqa: F401 (the desk fixture)
from test_cli_verify_capture import QUEUES, period

from reconciler.runtime.verification.cdr_check import CdrRejection, parse_cdr
from reconciler.runtime.verification.collector import Collector
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import Cdr

NOW = BASE_MS + 3_600_000
GOOD = make_cdr(1)

HOSTILE = [
    pytest.param({"endTime": iso(BASE_MS - 600_000)}, "endTime is before startTime", id="end-before-start-with-duration"),
    pytest.param({"durationMs": None, "endTime": iso(BASE_MS - 600_000)}, "endTime is before startTime",
                 id="end-before-start-without-duration"),
    pytest.param({"durationMs": 5}, "disagree", id="end-and-duration-disagree"),
    pytest.param({"durationMs": -1, "endTime": None}, "negative", id="negative-duration"),
    pytest.param({"durationMs": 10**30, "endTime": None}, "over 24 hours", id="huge-duration"),
    pytest.param({"durationMs": 25 * 3_600_000, "endTime": None}, "over 24 hours", id="duration-over-a-day"),
    pytest.param({"durationMs": 90.5, "endTime": None}, "not an integer", id="float-duration"),
    pytest.param({"durationMs": "90000", "endTime": None}, "not an integer", id="string-duration"),
    pytest.param({"durationMs": True, "endTime": None}, "not an integer", id="bool-duration"),
    pytest.param({"startTime": "2026-11-21T09:59:01.250"}, "no zone", id="naive-start"),
    pytest.param({"reportedAt": "2026-11-21T10:00:31"}, "no zone", id="naive-reported-at"),
    pytest.param({"startTime": "0001-01-01T00:00:00Z", "endTime": None}, "outside", id="start-year-1"),
    pytest.param({"startTime": "9999-12-31T23:59:59Z", "endTime": None}, "outside", id="start-year-9999"),
    pytest.param({"reportedAt": "2099-01-01T00:00:00Z"}, "outside", id="reported-in-the-future"),
    pytest.param({"startTime": "x" * 100_000}, "not an ISO time", id="100k-char-time"),
    pytest.param({"startTime": 1_795_255_141_250}, "not a time", id="epoch-number-time"),
    pytest.param({"reportedAt": iso(BASE_MS - 7_200_000)}, "reportedAt is before startTime", id="reported-before-start"),
    pytest.param({"cdrId": "x" * 129}, "cdrId", id="cdr-id-129-chars"),
    pytest.param({"cdrId": "ldn:1\n"}, "cdrId", id="cdr-id-trailing-newline"),
    pytest.param({"cdrId": "ldn:1\u202e"}, "cdrId", id="cdr-id-bidi-override"),
    pytest.param({"cdrId": " ldn:1"}, "cdrId", id="cdr-id-leading-space"),
    pytest.param({"cdrId": 123}, "cdrId is not a string", id="numeric-cdr-id"),
    pytest.param({"cdrId": ""}, "no cdrId", id="empty-cdr-id"),
    pytest.param({"traderId": "T-1001; DROP TABLE"}, "traderId", id="trader-id-with-spaces"),
    pytest.param({"traderId": "T" * 65}, "traderId", id="trader-id-65-chars"),
    pytest.param({"traderId": ["T-1001"]}, "traderId is not a string", id="trader-id-list"),
    pytest.param({"turret": "T" * 65}, "turret", id="turret-65-chars"),
    pytest.param({"line": "L3\x00"}, "line", id="line-nul"),
    pytest.param({"line": {"n": 3}}, "line is not a string", id="line-object"),
    pytest.param({"direction": "sideways"}, "direction", id="unknown-direction"),
    pytest.param({"direction": "OUT"}, "direction", id="upper-case-direction"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "problem"), HOSTILE)
def test_a_bad_cdr_is_a_rejection_that_says_why(changes: dict[str, Any], problem: str) -> None:
    item = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    parsed = parse_cdr(item, "c", NOW)
    assert isinstance(parsed, CdrRejection), parsed
    assert problem in parsed.detail
    assert len(parsed.cdr_id) <= 64 and "\n" not in parsed.detail and "\u202e" not in parsed.detail
    assert len(parsed.detail) < 1_000


@pytest.mark.parametrize(
    "item",
    [pytest.param(None, id="null"), pytest.param([GOOD], id="a-list"), pytest.param("cdr", id="a-string")],
)
def test_a_cdr_that_is_not_an_object_is_rejected(item: Any) -> None:
    assert isinstance(parse_cdr(item, "c", NOW), CdrRejection)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="full"),
        pytest.param({"endTime": None}, id="duration-only"),
        pytest.param({"durationMs": None}, id="end-time-only"),
        pytest.param({"turret": None, "line": None, "direction": None}, id="no-description"),
        pytest.param({"startTime": GOOD["startTime"].replace("Z", "+00:00")}, id="offset-zone"),
        pytest.param({"durationMs": 0, "endTime": GOOD["startTime"]}, id="zero-length-call"),
        pytest.param({"cdrId": "ldn-iptrade-01:000000123/seg#2"}, id="id-with-punctuation"),
    ],
)
def test_a_good_cdr_passes(changes: dict[str, Any]) -> None:
    item = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    parsed = parse_cdr(item, "c", NOW)
    assert not isinstance(parsed, CdrRejection), parsed.detail
    assert parsed[0].duration_ms >= 0


def _cdr(cdr_id: str = "s:1", start: int = BASE_MS, duration: int = 1000) -> Cdr:
    return Cdr(cdr_id, "c", "T-1001", "TUR-1", "L1", "out", start, duration)


def test_a_re_sent_cdr_is_idempotent_and_a_changed_one_is_an_anomaly(tmp_path: Path) -> None:
    with CursorStore(tmp_path / "runtime.db") as store:
        assert store.save_batch_checked("c", "primary", [_cdr()], "k1", BASE_MS).new == 1
        again = store.save_batch_checked("c", "secondary", [_cdr()], "k2", BASE_MS)
        assert (again.new, again.anomalies) == (0, ()), "the same CDR again is no news"
        changed = store.save_batch_checked("c", "primary", [_cdr(duration=5000)], "k3", BASE_MS)
        (anomaly,) = changed.anomalies
        assert anomaly.kind == "cdr_changed" and "duration_ms 1000 -> 5000" in anomaly.detail
        assert store.cdrs()[0].duration_ms == 1000, "the first version is kept"
        assert store.save_batch_checked("c", "primary", [_cdr(duration=5000)], "k4", BASE_MS).anomalies == ()
        twice = store.save_batch_checked("c", "primary", [_cdr("s:2"), _cdr("s:2", start=BASE_MS + 9)], "k5", None)
        assert [a.kind for a in twice.anomalies] == ["cdr_changed"], "a batch contradicting itself"
        assert [a.kind for a in store.anomalies()] == ["cdr_changed", "cdr_changed"]


def test_a_rejected_cdr_is_recorded_once(tmp_path: Path) -> None:
    bad = parse_cdr({**GOOD, "durationMs": -5, "endTime": None}, "c", NOW)
    assert isinstance(bad, CdrRejection)
    with CursorStore(tmp_path / "runtime.db") as store:
        first = store.save_batch_checked("c", "primary", [], "k1", None, [], [bad])
        assert [a.kind for a in first.anomalies] == ["invalid_cdr"]
        assert store.save_batch_checked("c", "primary", [], "k2", None, [], [bad]).anomalies == ()
        (stored,) = store.anomalies(None, BASE_MS - 3_600_000, BASE_MS + 3_600_000)
        assert stored.key.startswith(f"invalid_cdr:{GOOD['cdrId']}#") and "negative" in stored.detail


def test_the_collector_keeps_polling_past_bad_cdrs_and_alerts_them(tmp_path: Path) -> None:
    records = [
        make_cdr(0),
        {**make_cdr(1), "endTime": iso(BASE_MS - 600_000)},
        {**make_cdr(2), "cdrId": make_cdr(0)["cdrId"], "durationMs": 1, "endTime": None},
        make_cdr(3),
        {**make_cdr(4), "traderId": "T\x00"},
    ]
    alerts: list[tuple[str, str]] = []

    async def scenario() -> None:
        async with FakeWba(records) as server:
            with CursorStore(tmp_path / "runtime.db") as store:
                collector = Collector(
                    "c", store, server.url, token=lambda: TOKEN, alert=lambda k, d: alerts.append((k, d)), limit=2
                )
                for _ in range(10):
                    result = await collector.poll_once()
                    assert result.ok
                    if not result.more:
                        break
                await collector.close()
                assert sorted(c.cdr_id for c in store.cdrs()) == [make_cdr(0)["cdrId"], make_cdr(3)["cdrId"]]
                kinds = sorted(a.kind for a in store.anomalies())
                assert kinds == ["cdr_changed", "invalid_cdr", "invalid_cdr"]

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert sorted({kind for kind, _ in alerts}) == ["cdr_changed", "invalid_cdr"]
    assert all("\x00" not in detail for _, detail in alerts)


# ---------------------------------------------------------------- through the CLI, on the sandbox


def _knobs(root: Path, **knobs: Any) -> None:
    services = json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]
    server = f"{services['tradesense']['serversUrl']}/ldn-collector-a"
    httpx.put(f"{server}/knobs", json=knobs).raise_for_status()
    httpx.post(f"{server}/restart", json={}).raise_for_status()  # new cursors: recent CDRs are read again


def _anomalies(report: dict[str, Any], kind: str) -> set[str]:
    return {f["cdrId"] for f in report["findings"] if f["verdict"] == kind}


def test_recon_verify_reports_what_the_switch_got_wrong(recon: Recon, desk: Path) -> None:  # noqa: F811
    ok(recon("sandbox", "up", cwd=desk))
    first, last = period()
    verify = ("verify", "--from", first, "--to", last, "--format", "json")
    assert recon(*verify, cwd=desk).returncode == 0, "creates the topology's servers"
    ok(recon("sandbox", "floor", "--queues", QUEUES, "--count", "6", "--rate", "0.2", "--ago", "10m", cwd=desk))
    clean = recon(*verify, cwd=desk)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    baseline = json.loads(clean.stdout)
    assert baseline["findings"] == [] and baseline["total"]["counts"]["verified"] > 0, "a clean floor"
    floor = {call["cdrId"] for call in Org(desk).get("/api/v2/sandbox/floor", calls="true")["ledger"]}

    _knobs(desk, skewMs=120_000)  # the switch's clock jumps: the same CDRs, other times
    changed = recon(*verify, cwd=desk)
    assert changed.returncode == 2, changed.stdout + changed.stderr
    report = json.loads(changed.stdout)
    assert _anomalies(report, "cdr_changed") and _anomalies(report, "cdr_changed") <= floor, "re-read, named"
    assert all(f["severity"] == "major" for f in report["findings"])
    assert report["total"] == baseline["total"], "the first version is kept and still verified"
    again = json.loads(recon(*verify, cwd=desk).stdout)
    assert [f["key"] for f in again["findings"]] == [f["key"] for f in report["findings"]], "idempotent"

    _knobs(desk, skewMs=20 * 365 * 86_400_000)  # times twenty years ahead
    invalid = recon(*verify, cwd=desk)
    assert invalid.returncode == 2, invalid.stdout + invalid.stderr
    assert _anomalies(json.loads(invalid.stdout), "invalid_cdr") <= floor
    assert _anomalies(json.loads(invalid.stdout), "invalid_cdr")
    text = recon("verify", "--from", first, "--to", last, cwd=desk).stdout
    assert "invalid_cdr" in text and "outside 2000-01-01" in text and "fix them there" in text
    triage = recon("triage", "set", report["findings"][0]["key"], "--tag", "false-positive", "--note", "x", cwd=desk)
    assert triage.returncode == 1 and "Traceback" not in triage.stderr, "not triaged, and no crash"

    _knobs(desk, skewMs=21 * 365 * 86_400_000)  # another story: new anomalies, alerted by the runtime
    runtime = recon("runtime", "--once", "--since", "30m", cwd=desk)
    assert runtime.returncode in (0, 2), runtime.stdout + runtime.stderr
    alerts = [json.loads(line) for line in runtime.stderr.splitlines() if line.startswith("{")]
    assert any(entry.get("alert") == "invalid_cdr" for entry in alerts), runtime.stderr[-2000:]
