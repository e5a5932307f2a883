"""The capture-verification collector (reconciler.runtime.verification.collector) and its cursor
store, against in-test fake WBA servers (tests/fake_wba.py): resume from stored cursors, failover
inside one step, the `since` fallback, duplicates counted once, a seeded crash/kill run proving no
CDR is lost or stored twice, the HA comparison, alerts, the 200-trader rule, and tokens kept out
of logs and alerts.

Hermetic: loopback, OS-picked ports, temporary SQLite files. No sleeps as synchronisation: the
tests drive `poll_once()` step by step; the one `run()` test waits on queues fed by the store and
the alert callback, under bounded timeouts. Backoff is steered with a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fake_wba import BASE_MS, TOKEN, FakeWba, iso, make_cdr, make_cdrs

from reconciler.manifest.kinds.runtime import CollectorTopologySpec
from reconciler.runtime.verification.collector import (
    Collector,
    CollectorConfigError,
    PollResult,
    collectors_from_spec,
)
from reconciler.runtime.verification.cursor_store import CursorStore, SavedBatch
from reconciler.runtime.verification.model import Cdr
from reconciler.runtime.verification.wba import cdr_from_json, iso_to_ms

TIMEOUT = 20
NAME = "ldn-collector-a"
T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), TIMEOUT)

    return asyncio.run(bounded())


class Alerts(list[tuple[str, str]]):
    def __call__(self, kind: str, detail: str) -> None:
        self.append((kind, detail))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self]


def collector(
    store: CursorStore,
    a: FakeWba,
    b: FakeWba | None = None,
    alerts: Callable[[str, str], None] | None = None,
    **settings: Any,
) -> Collector:
    options: dict[str, Any] = {
        "token": lambda: TOKEN,
        "poll_interval_s": 0.01,
        "reconnect_initial_s": 0.0,
        "poll_timeout_s": 5.0,  # tests that inject a silent server pass a short one
        "limit": 25,
        **settings,
    }
    return Collector(NAME, store, a.url, b.url if b else None, alert=alerts, **options)


async def drain(c: Collector, steps: int = 500) -> list[PollResult]:
    """poll_once until a step succeeds with nothing more to read."""
    results = []
    for _ in range(steps):
        results.append(await c.poll_once())
        if results[-1].ok and not results[-1].more:
            return results
    raise AssertionError(f"not drained in {steps} steps: {results[-5:]}")


def expected(records: Sequence[dict[str, Any]]) -> list[Cdr]:
    cdrs = [cdr_from_json(r, NAME)[0] for r in records]
    return sorted(cdrs, key=lambda c: (c.start_ms, c.cdr_id))


# --- resume, failover, duplicates ----------------------------------------------------------------


def test_a_new_collector_resumes_from_the_stored_cursor(tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"

    async def scenario() -> None:
        async with FakeWba(make_cdrs(60)) as a:
            with CursorStore(db) as store:
                first = collector(store, a)
                results = await drain(first)
                await first.close()
                assert [(r.member, r.received, r.new, r.more) for r in results] == [
                    ("primary", 25, 25, True),
                    ("primary", 25, 25, True),
                    ("primary", 10, 10, False),
                ]
                stored = store.cursor(NAME, "primary")
                assert stored is not None and stored.high_water_ms == iso_to_ms(a.records[-1]["reportedAt"])
            a.records.extend(make_cdrs(5, first=60))
            with CursorStore(db) as store:  # a new process on the same file
                second = collector(store, a)
                result = await second.poll_once()
                await second.close()
                assert a.polls[-1]["cursor"] == stored.cursor  # resumed exactly, no since
                assert (result.received, result.new, store.count(NAME)) == (5, 5, 65)
                assert store.cdrs(NAME) == expected(a.records)

    run(scenario)


@pytest.mark.parametrize(
    "cause",
    ["down", "close-mid-batch", "going-away-4503", "poll-timeout", "unavailable"],
)
def test_failover_to_the_secondary_mid_stream_counts_each_cdr_once(tmp_path: Path, cause: str) -> None:
    async def scenario() -> None:
        records = make_cdrs(100)
        async with FakeWba(records) as a, FakeWba(records, role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                c = collector(store, a, b, overlap_ms=10_000, poll_timeout_s=0.5 if cause == "poll-timeout" else 5.0)
                assert [(await c.poll_once()).member for _ in range(2)] == ["primary", "primary"]
                high_water = store.high_water(NAME)
                assert high_water is not None
                if cause == "down":
                    a.down = True
                    await a.drop()
                else:
                    a.faults.append(
                        {"close-mid-batch": "close", "going-away-4503": "going_away", "poll-timeout": "silent"}.get(
                            cause, cause
                        )
                    )
                rest = await drain(c)
                await c.close()
                assert rest[0].member == "secondary"
                assert b.polls[0] == {"cursor": None, "since": iso(high_water - 10_000), "limit": 25}
                assert rest[0].received - rest[0].new == 11  # the overlap (both ends), re-read, dropped on the key
                assert store.count(NAME) == 100 and store.cdrs(NAME) == expected(records)
                assert 50 + sum(r.new for r in rest) == 100

    run(scenario)


def test_the_primary_is_preferred_again_and_resumes_from_its_own_cursor(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(40)) as a, FakeWba(make_cdrs(40), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                c = collector(store, a, b)
                assert (await c.poll_once()).member == "primary"
                primary_cursor = store.cursor(NAME, "primary")
                a.down = True
                await a.drop()
                assert (await c.poll_once()).member == "secondary"
                a.down = False
                for server in (a, b):
                    server.records.extend(make_cdrs(10, first=40))
                results = await drain(c)
                await c.close()
                assert {r.member for r in results} == {"primary"}
                assert primary_cursor is not None and a.polls[1]["cursor"] == primary_cursor.cursor
                assert store.count(NAME) == 50

    run(scenario)


def test_duplicates_resent_by_a_member_are_counted_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(80)) as a:
            with CursorStore(tmp_path / "runtime.db") as store:
                c = collector(store, a)
                await c.poll_once()
                a.faults.extend(["replay", "replay", "replay"])
                results = await drain(c)
                await c.close()
                assert sum(r.received for r in results) == 55 + 9  # three replays of 3
                assert 25 + sum(r.new for r in results) == 80 == store.count(NAME)

    run(scenario)


def test_a_restarted_server_answers_cursor_invalid_and_the_collector_uses_since(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(50)) as a:
            with CursorStore(tmp_path / "runtime.db") as store:
                c = collector(store, a, overlap_ms=5_000)
                await c.poll_once()
                high_water = store.high_water(NAME)
                assert high_water is not None
                await a.restart()
                results = await drain(c)
                await c.close()
                stale, fallback = a.polls[1], a.polls[2]
                assert stale["cursor"] is not None and stale["since"] is None
                assert fallback == {"cursor": None, "since": iso(high_water - 5_000), "limit": 25}
                assert results[0].member == "primary" and results[0].received - results[0].new == 6
                assert store.count(NAME) == 50

    run(scenario)


def test_a_batch_and_its_cursor_are_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with CursorStore(tmp_path / "runtime.db") as store:
        batch = [cdr_from_json(r, NAME)[0] for r in make_cdrs(3)]
        assert (
            store.save_batch(NAME, "primary", batch[:2], "e1:2", BASE_MS + 2000, [BASE_MS + 1000, BASE_MS + 2000]) == 2
        )

        def crash(*_: object) -> None:
            raise RuntimeError("power cut after the CDR inserts")

        monkeypatch.setattr(store, "_put_cursor", crash)
        with pytest.raises(RuntimeError):
            store.save_batch(NAME, "primary", batch, "e1:3", BASE_MS + 3000)
        monkeypatch.undo()
        assert store.count(NAME) == 2  # the third CDR was rolled back with the cursor
        checkpoint = store.cursor(NAME, "primary")
        assert checkpoint is not None and (checkpoint.cursor, checkpoint.high_water_ms) == ("e1:2", BASE_MS + 2000)
        assert store.save_batch(NAME, "secondary", batch, None, BASE_MS + 1000) == 1  # a lower high water ...
        assert store.high_water(NAME) == BASE_MS + 2000  # ... never lowers the collector's
        assert store.save_batch(NAME, "primary", batch, "e1:3", None) == 0
        assert store.high_water(NAME) == BASE_MS + 2000 and store.counts() == {NAME: 3}
        cut = sorted(c.start_ms for c in batch)[1]
        assert store.cdrs(NAME, from_ms=cut) == sorted(
            (c for c in batch if c.start_ms >= cut), key=lambda c: c.start_ms
        )
        assert store.cdrs(NAME, to_ms=cut) == [c for c in batch if c.start_ms < cut]
        assert store.cdrs("other") == [] and store.cursor("other", "primary") is None


# --- the seeded kill run -----------------------------------------------------------------------


class Crash(Exception):
    """The process dies here."""


class CrashingStore(CursorStore):
    crash_before_save = False
    crash_inside_save = False

    def save_batch_checked(self, *args: Any, **kwargs: Any) -> SavedBatch:
        if self.crash_before_save:
            raise Crash("between receiving the batch and saving it")
        return super().save_batch_checked(*args, **kwargs)

    def _put_cursor(self, *args: Any, **kwargs: Any) -> None:
        if self.crash_inside_save:
            raise Crash("inside the transaction, after the CDR inserts")
        super()._put_cursor(*args, **kwargs)


@pytest.mark.parametrize("seed", [7, 2026, 11_21])
def test_random_kills_lose_no_cdr_and_store_none_twice(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    records = make_cdrs(600)
    db = tmp_path / "runtime.db"

    async def scenario() -> dict[str, int]:
        seen: dict[str, int] = {}
        new_total = 0
        async with FakeWba() as a, FakeWba(role="secondary") as b:

            def build(store: CursorStore) -> Collector:
                return collector(store, a, b, overlap_ms=30_000, poll_timeout_s=0.2)

            store = CrashingStore(db)
            c = build(store)
            fed = 0
            while fed < len(records):
                step = rng.randint(0, 6)
                for server in (a, b):  # an HA pair reports the same CDRs
                    server.records.extend(records[fed : fed + step])
                fed += step
                action = rng.choice(
                    ["poll"] * 6
                    + ["fault-a", "fault-b", "toggle-a", "toggle-b", "crash-before", "crash-inside", "kill"]
                    + ["restart-a", "drop-a", "drop-b"]
                )
                seen[action] = seen.get(action, 0) + 1
                target = a if action.endswith("-a") else b
                if action.startswith("fault"):
                    target.faults.append(rng.choice(["close", "going_away", "silent", "unavailable", "replay"]))
                elif action.startswith("toggle"):
                    target.down = not target.down
                    await target.drop()
                elif action == "restart-a":
                    await a.restart()
                elif action.startswith("drop"):
                    await target.drop()
                store.crash_before_save = action == "crash-before"
                store.crash_inside_save = action == "crash-inside"
                try:
                    result = await c.poll_once()
                    new_total += result.new
                    seen[f"polled-{result.member}"] = seen.get(f"polled-{result.member}", 0) + 1
                    crashed = action == "kill"
                except Crash:
                    crashed = True
                if crashed:  # the process is gone: a new one starts on the same file
                    await c.close()
                    store.close()
                    store = CrashingStore(db)
                    c = build(store)
            a.down = b.down = False
            a.faults.clear()
            b.faults.clear()
            results = await drain(c)
            new_total += sum(r.new for r in results)
            await c.close()
            stored = store.cdrs(NAME)
            store.close()
        assert stored == expected(records)  # every CDR, each once, with its fields
        assert len({c.cdr_id for c in stored}) == len(stored) == len(records)
        assert new_total == len(records)  # and no poll counted one twice
        return seen

    seen = run(scenario)
    assert {"crash-before", "crash-inside", "kill", "fault-a", "toggle-a", "restart-a"} <= set(seen)
    assert {"polled-primary", "polled-secondary", "polled-None"} <= set(seen)  # failovers and outages happened


# --- HA comparison -----------------------------------------------------------------------------


def _shifted(record: dict[str, Any], ms: int) -> dict[str, Any]:
    return {**record, "reportedAt": iso(iso_to_ms(record["reportedAt"]) + ms)}


@pytest.mark.parametrize(
    ("case", "secondary", "mismatch"),
    [
        ("identical", list, None),
        ("reported-a-little-later", lambda r: [_shifted(x, 400) for x in r], None),
        ("two-missing-on-secondary", lambda r: r[:20] + r[22:], ([r"000000020", r"000000021"], [], [])),
        ("one-extra-on-secondary", lambda r: [*r[:30], make_cdr(30_000, spacing_ms=1), *r[30:]], ([], ["030000"], [])),
        ("one-differs", lambda r: [*r[:25], {**r[25], "traderId": "T-9999"}, *r[26:]], ([], [], ["000000025"])),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_ha_comparison_over_a_closed_window(tmp_path: Path, case: str, secondary: Any, mismatch: Any) -> None:
    records = make_cdrs(60)

    async def scenario() -> None:
        async with FakeWba(records) as a, FakeWba(secondary(records), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                alerts = Alerts()
                c = collector(store, a, b, alerts, limit=7, ha_slack_ms=2_000)
                report = await c.compare_members(BASE_MS + 10_000, BASE_MS + 40_000)
                await c.close()
                assert report is not None
                assert store.count() == 0 and store.checkpoints() == []  # a read-only look
                if mismatch is None:
                    assert report.matches and alerts == []
                    assert report.primary == report.secondary == 30
                    return
                assert not report.matches
                for ids, wanted in zip(
                    (report.only_primary, report.only_secondary, report.differing), mismatch, strict=True
                ):
                    assert len(ids) == len(wanted) and all(w in i for i, w in zip(ids, wanted, strict=True))
                [(kind, detail)] = alerts
                assert kind == "ha_mismatch" and NAME in detail
                assert all(i in detail for i in report.only_primary + report.only_secondary + report.differing)

    run(scenario)


def test_no_ha_comparison_without_a_secondary_or_when_a_member_is_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(5)) as a, FakeWba(make_cdrs(5), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                alerts = Alerts()
                single = collector(store, a, None, alerts)
                assert await single.compare_members(BASE_MS, BASE_MS + 10_000) is None
                pair = collector(store, a, b, alerts)
                b.down = True
                assert await pair.compare_members(BASE_MS, BASE_MS + 10_000) is None
                await pair.close()
                assert alerts == []

    run(scenario)


# --- alerts, backoff, configuration ------------------------------------------------------------


def test_collector_down_is_alerted_once_per_outage(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(5)) as a, FakeWba(make_cdrs(5), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                alerts = Alerts()
                c = collector(store, a, b, alerts)
                a.down = b.down = True
                assert [(await c.poll_once()).ok for _ in range(3)] == [False, False, False]
                assert alerts.kinds() == ["collector_down"] and c.down
                assert a.url.split("//")[1] in alerts[0][1] and b.url.split("//")[1] in alerts[0][1]
                b.down = False
                assert (await c.poll_once()).member == "secondary" and not c.down
                b.down = True
                await b.drop()
                assert not (await c.poll_once()).ok
                await c.close()
                assert alerts.kinds() == ["collector_down", "collector_down"]

    run(scenario)


def test_backoff_skips_a_failed_primary_until_it_is_due(tmp_path: Path) -> None:
    now = [0.0]

    async def scenario() -> None:
        async with FakeWba(make_cdrs(30)) as a, FakeWba(make_cdrs(30), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                c = collector(
                    store, a, b, reconnect_initial_s=1.0, reconnect_max_s=3.0, clock=lambda: now[0], rng=lambda: 0.0
                )
                a.down = True
                steps = []
                for at in (0.0, 0.5, 1.0, 2.9, 3.0, 5.9, 6.0):  # backoff 1, 2, 3 (capped), 3 s
                    now[0] = at
                    before = a.attempts
                    result = await c.poll_once()
                    steps.append((at, a.attempts - before, result.member))
                a.down = False
                now[0] = 9.0
                steps.append((9.0, 1, (await c.poll_once()).member))
                await c.close()
                assert steps == [
                    (0.0, 1, "secondary"),
                    (0.5, 0, "secondary"),
                    (1.0, 1, "secondary"),
                    (2.9, 0, "secondary"),
                    (3.0, 1, "secondary"),
                    (5.9, 0, "secondary"),
                    (6.0, 1, "secondary"),
                    (9.0, 1, "primary"),
                ]

    run(scenario)


def test_unauthorized_alerts_and_waits_for_a_new_token(tmp_path: Path) -> None:
    token = ["tsk-revoked"]

    async def scenario() -> None:
        async with FakeWba(make_cdrs(5)) as a:
            with CursorStore(tmp_path / "runtime.db") as store:
                alerts = Alerts()
                c = collector(store, a, None, alerts, token=lambda: token[0])
                assert not (await c.poll_once()).ok
                assert not (await c.poll_once()).ok  # the same token is not offered again
                assert a.attempts == 1
                assert alerts.kinds() == ["unauthorized", "collector_down"]
                token[0] = TOKEN  # rotated
                assert (await c.poll_once()).new == 5
                await c.close()

    run(scenario)


@pytest.mark.parametrize(
    ("fault", "alert"),
    [
        ("too_many_traders", "too_many_traders"),
        ("bad_request", "bad_request"),
        ("unavailable", None),
        ("close", None),
    ],
)
def test_server_refusals_alert_and_fail_over(tmp_path: Path, fault: str, alert: str | None) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(5)) as a, FakeWba(make_cdrs(5), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                alerts, now = Alerts(), [0.0]
                c = collector(store, a, b, alerts, clock=lambda: now[0], rng=lambda: 0.0)
                a.faults.append(fault)
                assert (await c.poll_once()).member == "secondary"  # failed over within the step
                now[0] = 0.2  # unavailable: retryAfterMs 250 not over; too_many_traders: 60 s (the maximum)
                assert (await c.poll_once()).member == ("primary" if fault in ("bad_request", "close") else "secondary")
                now[0] = 1.0
                assert (await c.poll_once()).member == ("secondary" if fault == "too_many_traders" else "primary")
                await c.close()
                assert alerts.kinds() == ([alert] if alert else [])

    run(scenario)


@pytest.mark.parametrize(
    ("case", "traders", "refused"),
    [("200-traders", 200, False), ("201-traders", 201, True), ("1000-traders", 1000, True)],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_more_than_200_traders_is_refused_at_construction(
    tmp_path: Path, case: str, traders: int, refused: bool
) -> None:
    ids = [f"T-{i}" for i in range(traders)]
    with CursorStore(tmp_path / "runtime.db") as store:
        if not refused:
            assert len(Collector(NAME, store, "ws://127.0.0.1:1/wba", token=lambda: TOKEN, traders=ids).traders) == 200
            return
        with pytest.raises(CollectorConfigError) as raised:
            Collector(NAME, store, "ws://127.0.0.1:1/wba", token=lambda: TOKEN, traders=ids)
        assert f"{traders} traders" in str(raised.value) and "split" in str(raised.value)


def _topology(traders: int = 2) -> CollectorTopologySpec:
    return CollectorTopologySpec.model_validate(
        {
            "dataSource": {"type": "bt-trading-enterprise", "switch": "ldn-iptrade-01"},
            "collectors": [
                {
                    "name": "ldn-collector-a",
                    "endpoints": {
                        "primary": "wss://ts-a1.example:8443/wba",
                        "secondary": "wss://ts-a2.example:8443/wba",
                    },
                    "token": "env:TRADESENSE_TOKEN_A",
                    "pollInterval": "10s",
                    "traders": [
                        {"id": f"T-{i}", "user": f"u{i}@acme.example", "turret": f"TUR-{i}"} for i in range(traders)
                    ],
                },
                {
                    "name": "ldn-collector-b",
                    "endpoints": {"primary": "wss://ts-b1.example:8443/wba"},
                    "token": "file:/run/secrets/ts-b",
                    "pollInterval": "1s",
                    "traders": [{"id": "X-1", "user": "x1@acme.example", "turret": "TUR-X1"}],
                },
            ],
            "matching": {"startTolerance": "2s", "durationTolerance": "1s", "lateRecordingGrace": "5m"},
            "target": "99.9%",
        }
    )


def test_collectors_from_spec(tmp_path: Path) -> None:
    secrets = {"env:TRADESENSE_TOKEN_A": TOKEN, "file:/run/secrets/ts-b": "tsk-b-secret"}
    asked: list[str] = []

    def resolve(reference: str) -> str:
        asked.append(reference)
        return secrets[reference]

    with CursorStore(tmp_path / "runtime.db") as store:
        a, b = collectors_from_spec(_topology(), resolve, store, reconnect_max_s=5.0)
        assert (a.name, [m.url for m in a.members], a.poll_interval_s, a.traders) == (
            "ldn-collector-a",
            ["wss://ts-a1.example:8443/wba", "wss://ts-a2.example:8443/wba"],
            10.0,
            ["T-0", "T-1"],
        )
        assert (b.name, len(b.members), b.poll_interval_s, b.reconnect_max_s) == ("ldn-collector-b", 1, 1.0, 5.0)
        assert asked == ["env:TRADESENSE_TOKEN_A", "file:/run/secrets/ts-b"]  # resolved once each, up front
        assert TOKEN not in repr(a) and "tsk-b-secret" not in repr(b)

        del secrets["file:/run/secrets/ts-b"]
        with pytest.raises(CollectorConfigError, match="file:/run/secrets/ts-b cannot be resolved"):
            collectors_from_spec(_topology(), resolve, store)
        with pytest.raises(CollectorConfigError, match="201 traders"):
            collectors_from_spec(_topology(traders=201), lambda _: TOKEN, store)


# --- the loop and the token --------------------------------------------------------------------


class SignallingStore(CursorStore):
    saved: asyncio.Queue[int]

    def save_batch_checked(self, *args: Any, **kwargs: Any) -> SavedBatch:
        saved = super().save_batch_checked(*args, **kwargs)
        self.saved.put_nowait(self.count())
        return saved


def test_run_polls_on_its_own_and_checks_the_pair(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeWba(make_cdrs(60)) as a, FakeWba(make_cdrs(59), role="secondary") as b:
            store = SignallingStore(tmp_path / "runtime.db")
            store.saved = asyncio.Queue()
            alerts: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            c = collector(
                store,
                a,
                b,
                lambda kind, detail: alerts.put_nowait((kind, detail)),
                ha_check_every_s=3600.0,
                ha_settle_ms=0,
                now_ms=lambda: BASE_MS + 3_600_000,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(c.run(stop))
            while await asyncio.wait_for(store.saved.get(), TIMEOUT) < 60:
                pass
            kind, detail = await asyncio.wait_for(alerts.get(), TIMEOUT)
            assert kind == "ha_mismatch" and "000000059" in detail
            for server in (a, b):
                server.records.extend(make_cdrs(5, first=60))
            while await asyncio.wait_for(store.saved.get(), TIMEOUT) < 65:
                pass
            stop.set()
            await asyncio.wait_for(task, TIMEOUT)
            store.close()

    run(scenario)


def test_tokens_never_reach_logs_or_alerts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = ["tsk-revoked-0123456789"]

    async def scenario() -> Alerts:
        alerts = Alerts()
        async with FakeWba(make_cdrs(30)) as a, FakeWba(make_cdrs(29), role="secondary") as b:
            with CursorStore(tmp_path / "runtime.db") as store:
                c = collector(store, a, b, alerts, token=lambda: token[0])
                await c.poll_once()  # both refuse the revoked token
                token[0] = TOKEN
                a.faults.extend(["close", "bad_request", "too_many_traders"])
                for _ in range(4):
                    await c.poll_once()
                assert a.faults == []
                await c.compare_members(BASE_MS, BASE_MS + 60_000)
                await c.close()
                assert repr(c).count("ws://") == 2
        return alerts

    alerts = run(scenario)
    assert {"unauthorized", "collector_down", "too_many_traders", "bad_request", "ha_mismatch"} <= set(alerts.kinds())
    assert "collector alert unauthorized" in caplog.text  # the log saw the events ...
    for secret in (TOKEN, "tsk-revoked-0123456789"):
        # ... and never a token, nor the start of one (websockets' frame log shortens long frames)
        for fragment in (secret, secret[:12]):
            assert fragment not in caplog.text
            assert all(fragment not in detail for _, detail in alerts)
