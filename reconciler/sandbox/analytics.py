"""Conversations of the sandbox org as Genesys analytics and transcript search answer them.

Stored conversations (see seed.py) are `{id, startTime, endTime, queueId, direction,
participants [{purpose "agent", userId, name, email} | {purpose "external", name}], transcript}`.

- `POST /api/v2/analytics/conversations/details/query` (SDK ConversationQuery ->
  AnalyticsConversationQueryResponse): body {interval "start/end" (required), order "asc"|"desc",
  orderBy "conversationStart"|"conversationEnd", paging {pageSize <= 100 (default 25), pageNumber},
  segmentFilters [{type "and"|"or", predicates [{type "dimension", dimension, operator "matches",
  value}]}], conversationFilters (same shape)} -> {conversations [...], totalHits}. Each
  conversation: {conversationId, conversationStart, conversationEnd, originatingDirection,
  participants [{participantId, participantName, purpose, userId?, sessions [{sessionId,
  mediaType "voice", direction, segments [{segmentStart, segmentEnd, queueId, segmentType
  "interact"}]}]}]}. Participants: the customer ("customer" when inbound, "external" when
  outbound), an "acd" participant named after the queue, then each agent.
  Like the real API, `conversations` is absent when nothing matches.
  SANDBOX: a conversation selected by its start inside the interval; segment dimensions are
  userId, queueId, mediaType, direction, purpose; conversation dimensions conversationId,
  originatingDirection; a predicate matches when ANY participant/session/segment of the
  conversation carries the value (the real API evaluates one segment at a time); filters AND
  together, predicates inside a filter combine by its type. Other dimensions/operators -> 400.
- `POST /api/v2/speechandtextanalytics/transcripts/search` (SDK TranscriptSearchRequest ->
  JsonSearchResponse): {pageSize <= 100 (default 25), pageNumber, types ["transcripts"],
  sortOrder "ASC"|"DESC", query [TranscriptSearchCriteria {type, fields, value | values,
  startValue, endValue, operator, group}]} -> {total, pageCount, pageSize, pageNumber, types,
  results [{conversationId, communicationId, mediaType "call", language "en-US", startTime,
  endTime}]}. Criteria: type EXACT | PHRASE | EXACT_PHRASE on field "transcript.content":
  case-insensitive phrase match on the transcript text (EXACT: every term present as a word);
  EXACT on "conversationId"/"mediaType"; DATE_RANGE on "conversation.startTime" (startValue
  inclusive, endValue exclusive, ISO-8601; dateFormat ignored). Top-level criteria AND together;
  `group` with operator "AND"/"OR" combines its members, "NOT" negates a criterion.
  SANDBOX: `results` is `object` in the SDK, so its fields are our own; ordered by start time.
- `GET /api/v2/sandbox/conversations` SANDBOX raw listing (?queueId=&userId=&from=&to=, paged).

Called by: reconciler.sandbox.genesys_server. Imports only the stdlib and reconciler.sandbox.wire.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from reconciler.sandbox.wire import JsonObj, bad_request, int_param, page, parse_interval, parse_iso, require_object

MAX_PAGE_SIZE = 100
SEGMENT_DIMENSIONS = ("userId", "queueId", "mediaType", "direction", "purpose")
CONVERSATION_DIMENSIONS = ("conversationId", "originatingDirection")
Facts = dict[str, set[str]]


@functools.lru_cache(maxsize=65536)
def sub_id(conversation_id: str, part: str) -> str:
    """A stable id for a part of a call (participant, segment), derived from the call's id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{conversation_id}:{part}"))


def conversation_detail(conv: JsonObj, queue_names: dict[str, str]) -> JsonObj:
    """One stored conversation as an AnalyticsConversationWithoutAttributes."""
    direction, queue_id = conv["direction"], conv["queueId"]
    agents = [p for p in conv["participants"] if p.get("purpose") == "agent"]
    external = next((p for p in conv["participants"] if p.get("purpose") != "agent"), {"name": "Customer"})

    def participant(index: int, purpose: str, name: str, user_id: str | None) -> JsonObj:
        segment = {
            "segmentStart": conv["startTime"],
            "segmentEnd": conv["endTime"],
            "queueId": queue_id,
            "segmentType": "interact",
        }
        session = {
            "sessionId": sub_id(conv["id"], f"s{index}"),
            "mediaType": "voice",
            "direction": direction,
            "segments": [segment],
        }
        out: JsonObj = {"participantId": sub_id(conv["id"], f"p{index}"), "participantName": name, "purpose": purpose}
        if user_id:
            out["userId"] = user_id
        out["sessions"] = [session]
        return out

    participants = [
        participant(0, "customer" if direction == "inbound" else "external", str(external.get("name", "")), None),
        participant(1, "acd", str(queue_names.get(queue_id, queue_id)), None),
        *(participant(2 + i, "agent", str(a.get("name", "")), str(a["userId"])) for i, a in enumerate(agents)),
    ]
    return {
        "conversationId": conv["id"],
        "conversationStart": conv["startTime"],
        "conversationEnd": conv["endTime"],
        "originatingDirection": direction,
        "participants": participants,
    }


def _segment_facts(detail: JsonObj) -> Facts:
    facts: Facts = {d: set() for d in SEGMENT_DIMENSIONS}
    for p in detail["participants"]:
        facts["purpose"].add(p["purpose"])
        if p.get("userId"):
            facts["userId"].add(p["userId"])
        for s in p["sessions"]:
            facts["mediaType"].add(s["mediaType"])
            facts["direction"].add(s["direction"])
            facts["queueId"].update(seg["queueId"] for seg in s["segments"] if seg.get("queueId"))
    return facts


def _compile_filters(filters: Any, field: str, dimensions: tuple[str, ...]) -> list[Callable[[Facts], bool]]:
    if filters is None:
        return []
    if not isinstance(filters, list):
        raise bad_request(f"{field} must be a list")
    compiled: list[Callable[[Facts], bool]] = []
    for i, raw_filter in enumerate(filters):
        f = require_object(raw_filter, f"{field}[{i}]")
        kind = f.get("type")
        if kind not in {"and", "or"}:
            raise bad_request(f"{field}[{i}].type must be 'and' or 'or'")
        preds = f.get("predicates")
        if not isinstance(preds, list) or not preds:
            raise bad_request(f"{field}[{i}].predicates must be a non-empty list")
        tests: list[tuple[str, str]] = []
        for j, raw_predicate in enumerate(preds):
            where = f"{field}[{i}].predicates[{j}]"
            p = require_object(raw_predicate, where)
            if p.get("type", "dimension") != "dimension" or p.get("dimension") not in dimensions:
                raise bad_request(f"{where}.dimension must be one of {list(dimensions)} (sandbox)")
            if p.get("operator", "matches") != "matches" or not isinstance(p.get("value"), str):
                raise bad_request(f"{where} needs operator 'matches' and a string value (sandbox)")
            tests.append((p["dimension"], p["value"]))
        compiled.append(_filter_test(tuple(tests), kind == "or"))
    return compiled


def _filter_test(tests: tuple[tuple[str, str], ...], any_of: bool) -> Callable[[Facts], bool]:
    def test(facts: Facts) -> bool:
        hits = (value in facts.get(dimension, set()) for dimension, value in tests)
        return any(hits) if any_of else all(hits)

    return test


def query_conversations(body: Any, conversations: list[JsonObj], queue_names: dict[str, str]) -> JsonObj:
    """POST /api/v2/analytics/conversations/details/query."""
    body = require_object(body)
    lo, hi = parse_interval(body.get("interval"))
    order = body.get("order", "asc")
    order_by = body.get("orderBy", "conversationStart")
    if order not in {"asc", "desc", "unordered"}:
        raise bad_request("order must be 'asc', 'desc' or 'unordered'")
    if order_by not in {"conversationStart", "conversationEnd"}:
        raise bad_request("orderBy must be 'conversationStart' or 'conversationEnd' (sandbox)")
    paging = require_object(body.get("paging") or {}, "paging")
    params = {k: str(paging[k]) for k in ("pageSize", "pageNumber") if paging.get(k) is not None}
    size = int_param(params, "pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_param(params, "pageNumber", 1)
    segment_tests = _compile_filters(body.get("segmentFilters"), "segmentFilters", SEGMENT_DIMENSIONS)
    conv_tests = _compile_filters(body.get("conversationFilters"), "conversationFilters", CONVERSATION_DIMENSIONS)
    hits: list[JsonObj] = []
    for conv in conversations:
        if not lo <= parse_iso(conv["startTime"]) < hi:
            continue
        detail = conversation_detail(conv, queue_names)
        conv_facts = {"conversationId": {conv["id"]}, "originatingDirection": {conv["direction"]}}
        if all(t(_segment_facts(detail)) for t in segment_tests) and all(t(conv_facts) for t in conv_tests):
            hits.append(detail)
    hits.sort(key=lambda d: parse_iso(d[order_by]), reverse=order == "desc")
    answer: JsonObj = {"totalHits": len(hits)}
    selected = hits[(number - 1) * size : number * size]
    if selected:
        answer = {"conversations": selected, **answer}
    return answer


# -- transcript search -----------------------------------------------------------------------------

TEXT_FIELDS = {"transcript.content", "transcript"}
DATE_FIELDS = {"conversation.startTime", "startTime", "conversationStartTime"}
EXACT_FIELDS = {"conversationId": "id", "conversation.id": "id", "mediaType": "mediaType"}


def _words(text: str) -> list[str]:
    """Lower-case words; inner `/ . ' -` stay (EUR/USD, we'd), trailing punctuation goes."""
    return re.findall(r"\w+(?:[/.'-]\w+)*", text.lower())


def _phrase_in(phrase: str, text: str) -> bool:
    wanted, have = _words(phrase), _words(text)
    n = len(wanted)
    return n > 0 and any(have[i : i + n] == wanted for i in range(len(have) - n + 1))


def _criterion(c: Any, where: str) -> Callable[[JsonObj], bool]:
    c = require_object(c, where)
    operator = str(c.get("operator", "AND")).upper()
    if c.get("group") is not None:
        members = c["group"]
        if not isinstance(members, list) or not members:
            raise bad_request(f"{where}.group must be a non-empty list")
        tests = [_criterion(m, f"{where}.group[{i}]") for i, m in enumerate(members)]
        combine = any if operator == "OR" else all
        grouped: Callable[[JsonObj], bool] = lambda conv: combine(t(conv) for t in tests)  # noqa: E731
        return (lambda conv: not grouped(conv)) if operator == "NOT" else grouped
    kind, fields = str(c.get("type", "")).upper(), c.get("fields")
    if not isinstance(fields, list) or len(fields) != 1 or not isinstance(fields[0], str):
        raise bad_request(f"{where}.fields must name one field (sandbox)")
    field = fields[0]
    values = c.get("values") if c.get("values") is not None else [c.get("value")]
    if kind == "DATE_RANGE" and field in DATE_FIELDS:
        start = parse_iso(c["startValue"]) if c.get("startValue") else None
        end = parse_iso(c["endValue"]) if c.get("endValue") else None

        def test(conv: JsonObj) -> bool:
            when: datetime = parse_iso(conv["startTime"])
            return (start is None or when >= start) and (end is None or when < end)

    elif not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise bad_request(f"{where} needs a string value or values")
    elif kind in {"PHRASE", "EXACT_PHRASE"} and field in TEXT_FIELDS:
        test = lambda conv: any(_phrase_in(v, conv["transcript"]) for v in values)  # noqa: E731
    elif kind == "EXACT" and field in TEXT_FIELDS:
        test = lambda conv: any(set(_words(v)) <= set(_words(conv["transcript"])) for v in values)  # noqa: E731
    elif kind == "EXACT" and field in EXACT_FIELDS:
        key = EXACT_FIELDS[field]
        test = lambda conv: conv.get(key, "call") in values  # noqa: E731
    else:
        raise bad_request(f"{where}: type {kind!r} on field {field!r} is not supported by the sandbox")
    return (lambda conv: not test(conv)) if operator == "NOT" else test


def search_transcripts(body: Any, conversations: list[JsonObj]) -> JsonObj:
    """POST /api/v2/speechandtextanalytics/transcripts/search."""
    body = require_object(body)
    types = body.get("types")
    if not isinstance(types, list) or "transcripts" not in types:
        raise bad_request('types must be ["transcripts"]')
    query = body.get("query")
    if not isinstance(query, list) or not query:
        raise bad_request("query must be a non-empty list of criteria")
    tests = [_criterion(c, f"query[{i}]") for i, c in enumerate(query)]
    params = {k: str(body[k]) for k in ("pageSize", "pageNumber") if body.get(k) is not None}
    size = int_param(params, "pageSize", 25, maximum=MAX_PAGE_SIZE)
    number = int_param(params, "pageNumber", 1)
    hits = sorted((c for c in conversations if all(t(c) for t in tests)), key=lambda c: parse_iso(c["startTime"]))
    if str(body.get("sortOrder", "ASC")).upper() == "DESC":
        hits.reverse()
    results = [
        {
            "conversationId": c["id"],
            "communicationId": sub_id(c["id"], "communication"),
            "mediaType": "call",
            "language": "en-US",
            "startTime": c["startTime"],
            "endTime": c["endTime"],
        }
        for c in hits[(number - 1) * size : number * size]
    ]
    return {
        "total": len(hits),
        "pageCount": math.ceil(len(hits) / size),
        "pageSize": size,
        "pageNumber": number,
        "types": ["transcripts"],
        "results": results,
    }


def list_conversations(query: dict[str, str], conversations: list[JsonObj]) -> JsonObj:
    """GET /api/v2/sandbox/conversations: the raw stored shape, filtered and paged."""
    start = parse_iso(query["from"]) if query.get("from") else None
    end = parse_iso(query["to"]) if query.get("to") else None
    queue_id, user_id = query.get("queueId"), query.get("userId")
    items = [
        c
        for c in conversations
        if (not queue_id or c["queueId"] == queue_id)
        and (not user_id or any(p.get("userId") == user_id for p in c["participants"]))
        and (start is None or parse_iso(c["startTime"]) >= start)
        and (end is None or parse_iso(c["startTime"]) < end)
    ]
    keep = ("queueId", "userId", "from", "to")
    return page(items, "/api/v2/sandbox/conversations", query, max_size=MAX_PAGE_SIZE, keep_params=keep)
