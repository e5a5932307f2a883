"""Conversations through the real endpoints: analytics details query and transcript search."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sandbox_http import login

from reconciler.sandbox import GenesysSandbox
from reconciler.sandbox.seed import CONVERSATION_COUNT, FLAGGED_PHRASES, HISTORY_DAYS, SEED_EPOCH
from reconciler.sandbox.wire import iso

DETAILS = "/api/v2/analytics/conversations/details/query"
SEARCH = "/api/v2/speechandtextanalytics/transcripts/search"
RAW = "/api/v2/sandbox/conversations"
# Every seeded conversation starts within HISTORY_DAYS before SEED_EPOCH (the interval is half-open).
HISTORY = f"{iso(SEED_EPOCH - timedelta(days=HISTORY_DAYS))}/{iso(SEED_EPOCH + timedelta(days=1))}"


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    """Read-only tests: one sandbox for the module."""
    with GenesysSandbox(None, seed=4) as sb, login(sb.base_url) as client:
        yield client


@pytest.fixture(scope="module")
def raw(api: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for number in range(1, math.ceil(CONVERSATION_COUNT / 100) + 1):
        out += api.get(RAW, params={"pageSize": 100, "pageNumber": number}).json()["entities"]
    assert len(out) == CONVERSATION_COUNT
    return out


def details(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post(DETAILS, json={"interval": HISTORY, "paging": {"pageSize": 100}, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_details_shape(api: httpx.Client, raw: list[dict[str, Any]]) -> None:
    answer = details(api, paging={"pageSize": 1})
    assert set(answer) == {"conversations", "totalHits"} and answer["totalHits"] == CONVERSATION_COUNT
    [conv] = answer["conversations"]
    source = raw[0]
    assert set(conv) == {
        "conversationId",
        "conversationStart",
        "conversationEnd",
        "originatingDirection",
        "participants",
    }
    assert (conv["conversationId"], conv["conversationStart"], conv["conversationEnd"]) == (
        source["id"],
        source["startTime"],
        source["endTime"],
    )
    purposes = [p["purpose"] for p in conv["participants"]]
    assert purposes[:2] == ["customer" if source["direction"] == "inbound" else "external", "acd"]
    agents = [p for p in conv["participants"] if p["purpose"] == "agent"]
    assert [a["userId"] for a in agents] == [p["userId"] for p in source["participants"] if p["purpose"] == "agent"]
    for participant in conv["participants"]:
        assert set(participant) >= {"participantId", "participantName", "purpose", "sessions"}
        [session] = participant["sessions"]
        assert (session["mediaType"], session["direction"]) == ("voice", source["direction"])
        [segment] = session["segments"]
        assert segment == {
            "segmentStart": source["startTime"],
            "segmentEnd": source["endTime"],
            "queueId": source["queueId"],
            "segmentType": "interact",
        }


def test_details_paging_and_order(api: httpx.Client, raw: list[dict[str, Any]]) -> None:
    asc = [c["conversationId"] for c in details(api, paging={"pageSize": 7, "pageNumber": 2})["conversations"]]
    assert asc == [c["id"] for c in raw[7:14]]
    desc = details(api, order="desc", paging={"pageSize": 3})["conversations"]
    assert [c["conversationId"] for c in desc] == [c["id"] for c in raw[::-1][:3]]
    empty = details(api, interval="2020-01-01T00:00:00Z/2020-02-01T00:00:00Z")
    assert empty == {"totalHits": 0}  # like the real API: no `conversations` key


def test_details_interval_selects_by_start(api: httpx.Client, raw: list[dict[str, Any]]) -> None:
    lo, hi = iso(SEED_EPOCH - timedelta(days=30)), iso(SEED_EPOCH + timedelta(days=1))
    wanted = [c["id"] for c in raw if lo <= c["startTime"] < hi]
    assert 0 < len(wanted) < len(raw)
    answer = details(api, interval=f"{lo}/{hi}")
    assert answer["totalHits"] == len(wanted)
    assert [c["conversationId"] for c in answer["conversations"]] == wanted[:100]


def _segment_filter(kind: str, *predicates: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": kind,
        "predicates": [{"type": "dimension", "dimension": d, "operator": "matches", "value": v} for d, v in predicates],
    }


@pytest.mark.parametrize(
    "case",
    ["one-queue", "or-two-queues", "and-queue-user", "two-filters-and", "direction", "no-match"],
)
def test_details_segment_filters(api: httpx.Client, raw: list[dict[str, Any]], case: str) -> None:
    q1, q2 = sorted({c["queueId"] for c in raw})[:2]
    user = next(p["userId"] for p in raw[0]["participants"] if p["purpose"] == "agent")
    q_user = raw[0]["queueId"]

    def agents(c: dict[str, Any]) -> set[str]:
        return {p.get("userId", "") for p in c["participants"]}

    cases: dict[str, tuple[list[dict[str, Any]], Any]] = {
        "one-queue": ([_segment_filter("or", ("queueId", q1))], lambda c: c["queueId"] == q1),
        "or-two-queues": (
            [_segment_filter("or", ("queueId", q1), ("queueId", q2))],
            lambda c: c["queueId"] in {q1, q2},
        ),
        "and-queue-user": (
            [_segment_filter("and", ("queueId", q_user), ("userId", user))],
            lambda c: c["queueId"] == q_user and user in agents(c),
        ),
        "two-filters-and": (
            [_segment_filter("or", ("queueId", q_user)), _segment_filter("or", ("userId", user))],
            lambda c: c["queueId"] == q_user and user in agents(c),
        ),
        "direction": ([_segment_filter("or", ("direction", "outbound"))], lambda c: c["direction"] == "outbound"),
        "no-match": ([_segment_filter("and", ("queueId", q1), ("queueId", q2))], lambda c: False),
    }
    filters, expect = cases[case]
    answer = details(api, segmentFilters=filters, paging={"pageSize": 100})
    wanted = [c["id"] for c in raw if expect(c)]
    assert answer["totalHits"] == len(wanted)
    assert [c["conversationId"] for c in answer.get("conversations", [])] == wanted[:100]


def test_details_conversation_filter(api: httpx.Client, raw: list[dict[str, Any]]) -> None:
    target = raw[42]["id"]
    flt = {"type": "or", "predicates": [{"dimension": "conversationId", "value": target}]}
    answer = details(api, conversationFilters=[flt])
    assert [c["conversationId"] for c in answer["conversations"]] == [target]


@pytest.mark.parametrize(
    "body",
    [
        {"paging": {"pageSize": 10}},
        {"interval": "nope"},
        {"interval": HISTORY, "paging": {"pageSize": 101}},
        {"interval": HISTORY, "order": "sideways"},
        {"interval": HISTORY, "segmentFilters": [_segment_filter("xor", ("queueId", "q"))]},
        {"interval": HISTORY, "segmentFilters": [_segment_filter("or", ("wrapUpCode", "q"))]},
    ],
    ids=["no-interval", "bad-interval", "page-too-big", "bad-order", "bad-filter-type", "unsupported-dimension"],
)
def test_details_validation(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post(DETAILS, json=body)
    assert response.status_code == 400
    assert response.json()["code"] in {"bad.request", "invalid.value"}


def search(api: httpx.Client, *query: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"types": ["transcripts"], "pageSize": 100, "query": list(query), **extra}
    response = api.post(SEARCH, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def phrase(text: str, kind: str = "PHRASE", operator: str | None = None) -> dict[str, Any]:
    criterion = {"type": kind, "fields": ["transcript.content"], "value": text}
    return {**criterion, "operator": operator} if operator else criterion


def test_transcript_search_shape_and_paging(api: httpx.Client, raw: list[dict[str, Any]]) -> None:
    answer = search(api, phrase("CONFIRMING NOW"), pageSize=40, pageNumber=2)
    assert set(answer) == {"total", "pageCount", "pageSize", "pageNumber", "types", "results"}
    pages = math.ceil(CONVERSATION_COUNT / 40)
    assert (answer["total"], answer["pageCount"], answer["pageSize"], answer["pageNumber"]) == (
        CONVERSATION_COUNT,
        pages,
        40,
        2,
    )
    first = answer["results"][0]
    assert set(first) == {"conversationId", "communicationId", "mediaType", "language", "startTime", "endTime"}
    assert (first["conversationId"], first["startTime"]) == (raw[40]["id"], raw[40]["startTime"])


@pytest.mark.parametrize(
    ("criteria", "predicate"),
    [
        ([phrase("buy 25m")], lambda t, s: "buy 25m" in t),
        ([phrase("eur/usd", "EXACT_PHRASE")], lambda t, s: "eur/usd" in t),
        ([phrase("sell brent", "EXACT")], lambda t, s: "sell" in t and "brent" in t),
        ([phrase("usd/jpy", operator="NOT")], lambda t, s: "usd/jpy" not in t),
        (
            [{"operator": "OR", "group": [phrase("gbp/usd"), phrase("vod ln")]}],
            lambda t, s: "gbp/usd" in t or "vod ln" in t,
        ),
        (
            [phrase("sell"), {"type": "DATE_RANGE", "fields": ["conversation.startTime"], "startValue": "2026-10-20T00:00:00Z", "endValue": "2026-10-25T00:00:00Z"}],
            lambda t, s: "sell" in t and "2026-10-20" <= s < "2026-10-25",
        ),
        (
            [{"operator": "OR", "group": [phrase(p) for p in FLAGGED_PHRASES]}],
            lambda t, s: any(p.lower() in t for p in FLAGGED_PHRASES),
        ),
    ],
    ids=["phrase", "exact-phrase", "exact-terms", "not", "or-group", "phrase-and-date-range", "flagged-phrases"],
)  # fmt: skip
def test_transcript_search_matches(
    api: httpx.Client, raw: list[dict[str, Any]], criteria: list[dict[str, Any]], predicate: Any
) -> None:
    wanted = [c["id"] for c in raw if predicate(c["transcript"].lower(), c["startTime"])]
    assert 0 < len(wanted) < CONVERSATION_COUNT
    answer = search(api, *criteria, pageSize=100)
    assert answer["total"] == len(wanted)
    assert [r["conversationId"] for r in answer["results"]] == wanted[:100]


def test_transcript_search_descending(api: httpx.Client, raw: list[dict[str, Any]]) -> None:
    answer = search(api, phrase("confirming"), sortOrder="DESC", pageSize=2)
    assert [r["conversationId"] for r in answer["results"]] == [raw[-1]["id"], raw[-2]["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"types": ["transcripts"]},
        {"types": ["recordings"], "query": [phrase("x")]},
        {"types": ["transcripts"], "query": [{"type": "RANGE", "fields": ["duration"], "value": "1"}]},
        {"types": ["transcripts"], "query": [phrase("x")], "pageSize": 101},
    ],
    ids=["no-query", "wrong-type", "unsupported-criterion", "page-too-big"],
)
def test_transcript_search_validation(api: httpx.Client, body: dict[str, Any]) -> None:
    assert api.post(SEARCH, json=body).status_code == 400
