"""The sandbox's audit log: AuditLogMessage entries and the Genesys audit query endpoints.

Entries follow the SDK model `AuditLogMessage` (JSON names from its `attribute_map`):

    {id, user {id, name, selfUri}, client {id, selfUri}, remoteIp [str], serviceName, level: "USER",
     eventDate, action, entity {id, name, selfUri}, entityType, status: "SUCCESS",
     propertyChanges [{property, oldValues [str], newValues [str]}]}

`oldValues`/`newValues` are `list[str]` in the SDK: a string value is stored as-is, any other
value (bool, number, object, list) as its JSON encoding with sorted keys (`true`, `5`,
`{"days": 90}`); an absent value is an empty list. A change made through the API is recorded
with user.id = user.name = client.id = the OAuth client id; an out-of-band console edit with
user.id = user.name = the person (e.g. "jane.doe@acme.example") and client.id = "admin-console".

What is audited where (UNCONFIRMED against the real audit taxonomy, but consistent here and
with reconciler.providers.genesys.audit.AUDIT_ENTITIES, which reads it for drift attribution):

    | change                          | serviceName | entityType         | entity.id        | actions                 |
    |---------------------------------|-------------|--------------------|------------------|-------------------------|
    | media retention policy          | Quality     | Policy             | policy id        | Create, Update, Delete  |
    | routing queue                   | Routing     | Queue              | queue id         | Create, Update, Delete  |
    | user (console edits only)       | Directory   | User               | user id          | Update                  |
    | recording settings              | Quality     | RecordingSettings  | "recordingsettings" | Update               |
    | deletion protection on / off    | Recording   | DeletionProtection | conversation id  | Update (deletionProtected) |

Query endpoints (GC shapes, SDK models AuditQueryRequest, AuditQueryExecutionStatusResponse,
AuditQueryExecutionResultsResponse, AuditRealtimeQueryRequest, AuditRealtimeQueryResultsResponse):
- `POST /api/v2/audits/query` {interval "start/end", serviceName, filters [{property, value}],
  sort [{name: "Timestamp", sortOrder: "ascending"|"descending"}]} -> {id, state, startDate,
  interval, serviceName, filters, sort}. SANDBOX: the job completes at once (state "Succeeded")
  and its results are a snapshot taken at submission; executions live in memory only.
- `GET /api/v2/audits/query/{id}` -> the same status; unknown id -> 404.
- `GET /api/v2/audits/query/{id}/results?pageSize=&cursor=` -> {id, pageSize, cursor, entities};
  `cursor` is absent on the last page. pageSize default 25, max 500 (UNCONFIRMED).
- `POST /api/v2/audits/query/realtime` (+ pageNumber, pageSize) -> {entities, pageSize,
  pageNumber, total, pageCount}.
Filter properties: UserId, ClientId, Action, EntityType, EntityId (TrusteeOrganizationId never
matches). Results are ordered by eventDate, ascending unless sort says "descending" (the real
default order is UNCONFIRMED); entries with equal eventDate keep the order they were written.

Called by: reconciler.sandbox.store (entries) and reconciler.sandbox.genesys_server (queries).
Imports only the stdlib and reconciler.sandbox.wire.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import threading
import uuid
from collections.abc import Callable
from typing import Any

from reconciler.sandbox.wire import (
    JsonObj,
    bad_request,
    int_param,
    not_found,
    now_iso,
    parse_interval,
    parse_iso,
    require_object,
)

CONSOLE_CLIENT_ID = "admin-console"
SANDBOX_REMOTE_IP = "127.0.0.1"
RESULTS_MAX_PAGE_SIZE = 500
REALTIME_MAX_PAGE_SIZE = 500

FILTER_GETTERS: dict[str, Callable[[JsonObj], str]] = {
    "UserId": lambda e: str(e["user"]["id"]),
    "ClientId": lambda e: str(e["client"]["id"]),
    "Action": lambda e: str(e["action"]),
    "EntityType": lambda e: str(e["entityType"]),
    "EntityId": lambda e: str(e["entity"]["id"]),
    "TrusteeOrganizationId": lambda e: "",
}


def as_strings(value: Any) -> list[str]:
    """An AuditLogMessage value list: strings as-is, other values JSON-encoded, absent -> []."""
    if value is None:
        return []
    return [value if isinstance(value, str) else json.dumps(value, sort_keys=True)]


def property_changes(old: JsonObj, new: JsonObj) -> list[JsonObj]:
    """One PropertyChange per top-level key whose value differs between `old` and `new`."""
    return [
        {"property": k, "oldValues": as_strings(old.get(k)), "newValues": as_strings(new.get(k))}
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def audit_entry(
    *,
    user: str,
    client_id: str,
    service: str,
    entity_type: str,
    action: str,
    entity: JsonObj,
    changes: list[JsonObj],
) -> JsonObj:
    """A new AuditLogMessage stamped now."""
    entity_id = str(entity.get("id", ""))
    ref: JsonObj = {"id": entity_id, "name": str(entity.get("name", ""))}
    if entity.get("selfUri"):
        ref["selfUri"] = entity["selfUri"]
    return {
        "id": str(uuid.uuid4()),
        "user": {"id": user, "name": user, "selfUri": f"/api/v2/users/{user}"},
        "client": {"id": client_id, "selfUri": f"/api/v2/oauth/clients/{client_id}"},
        "remoteIp": [SANDBOX_REMOTE_IP],
        "serviceName": service,
        "level": "USER",
        "eventDate": now_iso(),
        "action": action,
        "entity": ref,
        "entityType": entity_type,
        "status": "SUCCESS",
        "propertyChanges": changes,
    }


def _validated(body: Any) -> JsonObj:
    """The normalised AuditQueryRequest fields, or ApiError 400 naming the bad field."""
    body = require_object(body)
    parse_interval(body.get("interval"))
    service = body.get("serviceName")
    if not isinstance(service, str) or not service:
        raise bad_request("serviceName is required")
    filters = body.get("filters") or []
    if not isinstance(filters, list):
        raise bad_request("filters must be a list of {property, value}")
    for f in filters:
        if not isinstance(f, dict) or f.get("property") not in FILTER_GETTERS or not isinstance(f.get("value"), str):
            raise bad_request(f"unsupported filter {f!r}; filters[].property is one of {sorted(FILTER_GETTERS)}")
    sort = body.get("sort") or []
    if not isinstance(sort, list):
        raise bad_request("sort must be a list of {name, sortOrder}")
    for s in sort:
        if not isinstance(s, dict) or s.get("name") != "Timestamp":
            raise bad_request(f"unsupported sort {s!r}; sort[].name must be 'Timestamp'")
        if s.get("sortOrder", "ascending") not in {"ascending", "descending"}:
            raise bad_request("sort[].sortOrder must be 'ascending' or 'descending'")
    return {"interval": body["interval"], "serviceName": service, "filters": filters, "sort": sort}


def select(request: JsonObj, entries: list[JsonObj]) -> list[JsonObj]:
    """Entries matching a validated request, ordered by eventDate as the request's sort says."""
    lo, hi = parse_interval(request["interval"])
    hits = [
        e
        for e in entries
        if e["serviceName"] == request["serviceName"]
        and lo <= parse_iso(e["eventDate"]) < hi
        and all(FILTER_GETTERS[f["property"]](e) == f["value"] for f in request["filters"])
    ]
    hits.sort(key=lambda e: parse_iso(e["eventDate"]))
    if any(s.get("sortOrder") == "descending" for s in request["sort"]):
        hits.reverse()
    return copy.deepcopy(hits)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "offset":
            raise ValueError(kind)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request(f"cursor {cursor!r} is not a cursor this query returned") from exc


class AuditQueries:
    """Audit query executions (transactions), kept in memory. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executions: dict[str, tuple[JsonObj, list[JsonObj]]] = {}

    def clear(self) -> None:
        with self._lock:
            self._executions.clear()

    def submit(self, body: Any, entries: list[JsonObj]) -> JsonObj:
        """POST /api/v2/audits/query: run the query now and return its execution status."""
        request = _validated(body)
        status = {"id": str(uuid.uuid4()), "state": "Succeeded", "startDate": now_iso(), **request}
        results = select(request, entries)
        with self._lock:
            self._executions[status["id"]] = (status, results)
        return copy.deepcopy(status)

    def _execution(self, transaction_id: str) -> tuple[JsonObj, list[JsonObj]]:
        with self._lock:
            found = self._executions.get(transaction_id)
        if found is None:
            raise not_found("audit query", transaction_id)
        return found

    def status(self, transaction_id: str) -> JsonObj:
        return copy.deepcopy(self._execution(transaction_id)[0])

    def results(self, transaction_id: str, query: dict[str, str]) -> JsonObj:
        """GET .../{id}/results: one cursor page of AuditLogMessage entities."""
        _, results = self._execution(transaction_id)
        size = int_param(query, "pageSize", 25, maximum=RESULTS_MAX_PAGE_SIZE)
        offset = _decode_cursor(query["cursor"]) if query.get("cursor") else 0
        page: JsonObj = {
            "id": transaction_id,
            "pageSize": size,
            "entities": copy.deepcopy(results[offset : offset + size]),
        }
        if offset + size < len(results):
            page["cursor"] = _encode_cursor(offset + size)
        return page


def realtime(body: Any, entries: list[JsonObj]) -> JsonObj:
    """POST /api/v2/audits/query/realtime: matching entries, paged by pageNumber/pageSize."""
    request = _validated(body)
    raw = require_object(body)
    paging = {k: str(raw[k]) for k in ("pageSize", "pageNumber") if raw.get(k) is not None}
    size = int_param(paging, "pageSize", 25, maximum=REALTIME_MAX_PAGE_SIZE)
    number = int_param(paging, "pageNumber", 1)
    hits = select(request, entries)
    return {
        "entities": hits[(number - 1) * size : number * size],
        "pageSize": size,
        "pageNumber": number,
        "total": len(hits),
        "pageCount": math.ceil(len(hits) / size),
    }
