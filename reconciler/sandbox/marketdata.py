"""MarketDataSandbox: a loopback market-data server speaking three feed dialects, with fault knobs.

The runtime fetches call-start price snapshots from it. Endpoints and shapes:

  GET  /generic/snapshot?symbols=S1,S2&fields=F1,F2      generic-rest; `Authorization: Bearer <client_token>`
       -> 200 {"timestamp": "2026-10-27T14:30:00.123Z", "data": {"S1": {"F1": 2.45}, "S2": {"F2": 1.089}}}
       an unknown symbol is absent from data, an unknown field absent from its symbol's object
  POST /bloomberg/refdata  {"securities": [...], "fields": [...]}
       bloomberg; a bearer token is optional, but if one is sent it must be client_token
       -> 200 {"status": 0, "timestamp", "data": [{"security": S, "fieldData": {F: value}}]}
       unknown security: {"security": S, "securityError": {"category": "BAD_SEC",
       "message": "Unknown/Invalid security"}} instead of fieldData; unknown fields:
       "fieldExceptions": [{"fieldId": F, "errorInfo": {"message": "Field not applicable"}}]
  POST /auth/oauth2/v1/token  form grant_type=client_credentials&client_id=..&client_secret=..
       (or HTTP Basic id:secret)  refinitiv's token endpoint
       -> 200 {"access_token", "expires_in": 300, "token_type": "Bearer"}; wrong client -> 401
       {"error": "invalid_client", ...}; other grant -> 400 {"error": "unsupported_grant_type", ...}
  GET  /refinitiv/data/pricing/snapshots/v1/?universe=S1,S2&fields=F1,F2   refinitiv; Bearer <issued token>
       -> 200 {"timestamp", "headers": [{"name": "instrument"}, {"name": "F1"}, {"name": "F2"}],
       "data": [["S1", 2.45, null], ["S2", null, 1.089]]}; unknown fields (and every field of an
       unknown instrument) are null; an unknown or expired token -> 401

Symbols and fields are comma-separated and URL-encoded; symbols keep slashes and periods
(EUR/USD, RDSa.L). Every symbol answers except one containing "UNKNOWN"; so does every field
(marketdata_payloads.py has the prices). Missing symbols/fields -> 400. Errors other than
OAuth's are {"error": code, "message"}; 401 is {"error": "invalid_token", "message"}.

Sandbox control endpoints (no auth; never delayed, faulted or counted):

  GET/PUT/DELETE /sandbox/knobs   {"latencyMs": {"p50": 20, "p99": 35} | ms | null,
       "failureRate", "garbageRate", "piiRate", "status0ErrorRate": 0..1, "seed": int}
       PUT merges the keys given (a new seed restarts the draws); DELETE turns every knob off
       and restarts the draws from the constructor's seed; -> 200 the knobs; a bad value or
       unknown knob -> 400 {"error": "bad_request", "message", "knob"}
  GET/DELETE     /sandbox/stats   {"requests": {path: n}, "tokenRequests", "tokensIssued",
       "outcomes": {"ok", "failure", "status0Error", "garbage", "pii"},
       "latencyMs": {"count", "p50", "p90", "p99", "max"}} (injected delays); DELETE zeroes them
  POST           /sandbox/expire-tokens  every issued refinitiv token expires -> {"expired": n}
  GET            /sandbox/health  -> {"status": "ok"}

The knobs act on the three data endpoints, after authentication and request validation (so
401s and 400s never consume draws). Each such request takes exactly six draws from one
`random.Random(seed)`, in arrival order, whatever the knobs: latency, failure, status-0 error,
garbage, PII, and which garbage/PII variant. Outcomes, first that applies:

  failureRate      503 {"error": "service_unavailable", "message"} + Retry-After: 1
  status0ErrorRate bloomberg only: 200 {"status": 0, "responseError": {"category": "LIMIT", "message"}}
  garbageRate      200 with a body that is truncated JSON, an HTML page, JSON with wrong types
                   (numbers as strings, an epoch-number timestamp) or JSON with NaN values
  piiRate          200, well-formed, plus an unrequested field in each item holding an IBAN, a
                   card number, an e-mail, a US SSN or a UK NI number (item i gets kind k+i):
                   generic data[S]["traderNote"], bloomberg fieldData["TRADER_NOTE"],
                   refinitiv an extra "TRADER_NOTE" column
  latencyMs        delay the answer: fixed, or log-normal with the given median and 99th
                   percentile (sigma = ln(p99/p50) / 2.326); the transport waits before sending
                   and serves other requests meanwhile (transport.py)

An injected answer carries `X-Sandbox-Injected: failure | status0-error | garbage:<kind> | pii:<kind>`.

Called by: reconciler.sandbox.daemon and tests. Imports only the stdlib and reconciler.sandbox siblings.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reconciler.sandbox.marketdata_knobs import Knobs, MarketDataError
from reconciler.sandbox.marketdata_payloads import PII_KINDS, garbage, is_unknown, pii_note, price
from reconciler.sandbox.transport import LoopbackService, Response, json_response
from reconciler.sandbox.wire import iso

TEST_TOKEN = "sandbox-marketdata-token"
CLIENT_ID = "recon-marketdata"
CLIENT_SECRET = "marketdata-secret"
TOKEN_LIFETIME_S = 300

GENERIC = "/generic/snapshot"
BLOOMBERG = "/bloomberg/refdata"
TOKEN = "/auth/oauth2/v1/token"
REFINITIV = "/refinitiv/data/pricing/snapshots/v1/"
KNOBS = "/sandbox/knobs"
STATS = "/sandbox/stats"
EXPIRE_TOKENS = "/sandbox/expire-tokens"
HEALTH = "/sandbox/health"

_LATENCY_SAMPLES = 100_000


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _names(query: dict[str, str], key: str) -> list[str]:
    names = [name.strip() for name in query.get(key, "").split(",") if name.strip()]
    if not names:
        raise MarketDataError(400, "bad_request", f"query parameter {key} is required (comma-separated)")
    return names


def _name_list(body: dict[str, Any], key: str) -> list[str]:
    names = body.get(key)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise MarketDataError(400, "bad_request", f"{key} must be a non-empty list of strings")
    return names


class MarketDataSandbox(LoopbackService):
    """An in-process market-data feed. Use as a context manager or call start()/stop().

    `client_token` is the static bearer token of the generic (and bloomberg) dialect;
    `client_id`/`client_secret` are refinitiv's OAuth client. `clock` gives epoch seconds for
    prices, timestamps and token expiry (tests pass a fake one).
    """

    def __init__(
        self,
        seed: int = 0,
        client_token: str = TEST_TOKEN,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.client_token = client_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.knobs = Knobs(seed)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._zero_stats()

    def _zero_stats(self) -> None:
        with self._lock:
            self._counts: Counter[str] = Counter()
            self._outcomes: Counter[str] = Counter(
                dict.fromkeys(("ok", "failure", "status0Error", "garbage", "pii"), 0)
            )
            self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
            self._token_requests = 0
            self._tokens_issued = 0

    # -- lifecycle ----------------------------------------------------------------------------

    thread_name = "marketdata-sandbox"
    backlog = 1024  # hundreds of clients may connect at once

    def runs_on_loop(self, method: str, path: str) -> bool:
        """Every answer is in-memory work (the latency knob is a delay, not a sleep)."""
        return True

    def dialect_urls(self) -> dict[str, str]:
        url = self.base_url
        return {"generic-rest": url + GENERIC, "bloomberg": url + BLOOMBERG, "refinitiv": url + REFINITIV}

    # -- knobs, stats and tokens out of band ---------------------------------------------------

    def set_knobs(self, knobs: Mapping[str, Any]) -> dict[str, Any]:
        """As PUT /sandbox/knobs (JSON names); raises MarketDataError on a bad value."""
        return self.knobs.update(dict(knobs))

    @property
    def token_requests(self) -> int:
        with self._lock:
            return self._token_requests

    def expire_tokens(self) -> int:
        """Expire every issued refinitiv token; how many were live."""
        now = self.clock()
        with self._lock:
            live = sum(1 for expiry in self._tokens.values() if expiry > now)
            self._tokens = dict.fromkeys(self._tokens, now)
        return live

    def stats(self) -> dict[str, Any]:
        with self._lock:
            ordered = sorted(self._latencies)
            latency: dict[str, Any] = {"count": len(ordered)}
            if ordered:
                latency.update(
                    {
                        "p50": round(_percentile(ordered, 0.5), 3),
                        "p90": round(_percentile(ordered, 0.9), 3),
                        "p99": round(_percentile(ordered, 0.99), 3),
                        "max": round(ordered[-1], 3),
                    }
                )
            return {
                "requests": dict(self._counts),
                "tokenRequests": self._token_requests,
                "tokensIssued": self._tokens_issued,
                "outcomes": dict(self._outcomes),
                "latencyMs": latency,
            }

    # -- HTTP ----------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Response:
        """Answer one HTTP request (transport-independent: transport.py only does I/O)."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            if path.startswith("/sandbox/"):
                return self._control(method, path, raw_body)
            with self._lock:
                self._counts[REFINITIV if path == REFINITIV.rstrip("/") else path] += 1
            if path == TOKEN:
                return self._token(method, headers, raw_body)
            if path == GENERIC:
                self._allow(method, "GET", path)
                self._static_bearer(headers, required=True)
                return self._serve("generic", self._generic(_names(query, "symbols"), _names(query, "fields")))
            if path == BLOOMBERG:
                self._allow(method, "POST", path)
                self._static_bearer(headers, required=False)
                body = _json_body(raw_body)
                securities, fields = _name_list(body, "securities"), _name_list(body, "fields")
                return self._serve("bloomberg", self._bloomberg(securities, fields))
            if path == REFINITIV.rstrip("/"):
                self._allow(method, "GET", path)
                self._issued_bearer(headers)
                return self._serve("refinitiv", self._refinitiv(_names(query, "universe"), _names(query, "fields")))
            raise MarketDataError(404, "not_found", f"no resource at {path}")
        except MarketDataError as error:
            return error.response()

    @staticmethod
    def _allow(method: str, allowed: str, path: str) -> None:
        if method != allowed:
            raise MarketDataError(405, "method_not_allowed", f"use {allowed} {path}", headers={"Allow": allowed})

    def _control(self, method: str, path: str, raw_body: bytes) -> Response:
        if path == KNOBS:
            if method == "GET":
                return json_response(200, self.knobs.to_json())
            if method == "PUT":
                return json_response(200, self.knobs.update(_json_body(raw_body)))
            if method == "DELETE":
                return json_response(200, self.knobs.clear())
            raise MarketDataError(405, "method_not_allowed", f"use GET, PUT or DELETE {path}")
        if path == STATS:
            if method == "DELETE":
                self._zero_stats()
            elif method != "GET":
                raise MarketDataError(405, "method_not_allowed", f"use GET or DELETE {path}")
            return json_response(200, self.stats())
        if path == EXPIRE_TOKENS:
            self._allow(method, "POST", path)
            return json_response(200, {"expired": self.expire_tokens()})
        if path == HEALTH:
            return json_response(200, {"status": "ok"})
        raise MarketDataError(404, "not_found", f"no resource at {path}")

    # -- authentication ------------------------------------------------------------------------

    def _static_bearer(self, headers: dict[str, str], *, required: bool) -> None:
        if "authorization" not in headers and not required:
            return
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise MarketDataError(401, "invalid_token", "an Authorization: Bearer <token> header is required")
        if not secrets.compare_digest(auth[7:].strip(), self.client_token):
            raise MarketDataError(401, "invalid_token", "the bearer token is not valid for this feed")

    def _issued_bearer(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise MarketDataError(401, "invalid_token", "an Authorization: Bearer <token> header is required")
        with self._lock:
            expiry = self._tokens.get(auth[7:].strip())
        if expiry is None:
            raise MarketDataError(401, "invalid_token", "the access token is not valid")
        if expiry <= self.clock():
            raise MarketDataError(401, "invalid_token", "the access token has expired")

    def _token(self, method: str, headers: dict[str, str], raw_body: bytes) -> Response:
        with self._lock:
            self._token_requests += 1
        self._allow(method, "POST", TOKEN)
        form = dict(parse_qsl(raw_body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            message = "only grant_type=client_credentials is supported"
            return json_response(400, {"error": "unsupported_grant_type", "error_description": message})
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = headers.get("authorization", "")
        if auth.startswith("Basic ") and not client_id:
            try:
                client_id, _, secret = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = secret = ""
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return json_response(401, {"error": "invalid_client", "error_description": "client authentication failed"})
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self.clock() + TOKEN_LIFETIME_S
            self._tokens_issued += 1
        return json_response(200, {"access_token": token, "expires_in": TOKEN_LIFETIME_S, "token_type": "Bearer"})

    # -- dialects ------------------------------------------------------------------------------

    def _timestamp(self) -> tuple[float, str]:
        now = self.clock()
        return now, iso(datetime.fromtimestamp(now, UTC))

    def _generic(self, symbols: list[str], fields: list[str]) -> dict[str, Any]:
        now, stamp = self._timestamp()
        data = {
            symbol: {field: price(symbol, field, now) for field in fields if not is_unknown(field)}
            for symbol in symbols
            if not is_unknown(symbol)
        }
        return {"timestamp": stamp, "data": data}

    def _bloomberg(self, securities: list[str], fields: list[str]) -> dict[str, Any]:
        now, stamp = self._timestamp()
        items: list[dict[str, Any]] = []
        for security in securities:
            if is_unknown(security):
                error = {"category": "BAD_SEC", "message": "Unknown/Invalid security"}
                items.append({"security": security, "securityError": error})
                continue
            item: dict[str, Any] = {
                "security": security,
                "fieldData": {field: price(security, field, now) for field in fields if not is_unknown(field)},
            }
            exceptions = [
                {"fieldId": field, "errorInfo": {"message": "Field not applicable"}}
                for field in fields
                if is_unknown(field)
            ]
            if exceptions:
                item["fieldExceptions"] = exceptions
            items.append(item)
        return {"status": 0, "timestamp": stamp, "data": items}

    def _refinitiv(self, universe: list[str], fields: list[str]) -> dict[str, Any]:
        now, stamp = self._timestamp()
        rows = [
            [
                instrument,
                *(
                    None if is_unknown(instrument) or is_unknown(field) else price(instrument, field, now)
                    for field in fields
                ),
            ]
            for instrument in universe
        ]
        return {"timestamp": stamp, "headers": [{"name": "instrument"}, *({"name": f} for f in fields)], "data": rows}

    # -- knobs at work -------------------------------------------------------------------------

    def _serve(self, dialect: str, payload: dict[str, Any]) -> Response:
        draw = self.knobs.draw()
        outcome, injected = "ok", ""
        response: Response | None = None
        if draw.failure:
            outcome, injected = "failure", "failure"
            message = "the market data service is unavailable (sandbox fault injection)"
            response = json_response(503, {"error": "service_unavailable", "message": message}, {"Retry-After": "1"})
        elif draw.status0 and dialect == "bloomberg":
            outcome, injected = "status0Error", "status0-error"
            error = {"category": "LIMIT", "message": "Daily capacity reached (sandbox fault injection)"}
            response = json_response(200, {"status": 0, "responseError": error})
        elif draw.garbage is not None:
            outcome, injected = "garbage", f"garbage:{draw.garbage}"
            body, content_type = garbage(draw.garbage, payload)
            response = Response(200, body, {"Content-Type": content_type})
        elif draw.pii is not None:
            outcome, injected = "pii", f"pii:{PII_KINDS[draw.pii]}"
            response = json_response(200, _with_pii(dialect, payload, draw.pii))
        with self._lock:
            self._outcomes[outcome] += 1
            self._latencies.append(draw.latency_ms)
        delay_s = draw.latency_ms / 1000
        if response is None:
            return replace(json_response(200, payload), delay_s=delay_s)
        return Response(response.status, response.body, {**response.headers, "X-Sandbox-Injected": injected}, delay_s)


def _with_pii(dialect: str, payload: dict[str, Any], offset: int) -> dict[str, Any]:
    """`payload` with an unrequested PII-laden field in each item (item i gets PII variant offset+i)."""
    if dialect == "generic":
        data = {
            s: {**fields, "traderNote": pii_note(offset + i)} for i, (s, fields) in enumerate(payload["data"].items())
        }
        return {**payload, "data": data}
    if dialect == "bloomberg":
        items = [
            {**item, "fieldData": {**item["fieldData"], "TRADER_NOTE": pii_note(offset + i)}}
            if "fieldData" in item
            else item
            for i, item in enumerate(payload["data"])
        ]
        return {**payload, "data": items}
    rows = [[*row, pii_note(offset + i)] for i, row in enumerate(payload["data"])]
    return {**payload, "headers": [*payload["headers"], {"name": "TRADER_NOTE"}], "data": rows}


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MarketDataError(400, "bad_request", f"the request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise MarketDataError(400, "bad_request", "the request body must be a JSON object")
    return body
