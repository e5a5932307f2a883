"""The market-data sandbox's knobs and its error answer: latency distribution, failure,
garbage, PII and status-0 rates, drawn deterministically from a seed.

`Knobs.draw()` takes six draws per data request whatever the knobs are, so a seed and a call
order always give the same faults; latency is log-normal fitted to p50/p99 (or fixed).

Called by: reconciler.sandbox.marketdata. Imports only the stdlib and sandbox siblings.
"""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from reconciler.sandbox.marketdata_payloads import GARBAGE_KINDS, PII_KINDS
from reconciler.sandbox.transport import Response, json_response

MAX_LATENCY_MS = 60_000.0
_Z99 = NormalDist().inv_cdf(0.99)
_RATES = {"failureRate": "failure", "garbageRate": "garbage", "piiRate": "pii", "status0ErrorRate": "status0"}
_KNOB_NAMES = ("latencyMs", *_RATES, "seed")


class MarketDataError(Exception):
    """An HTTP error answer: {"error": code, "message"} (+ "knob" for a bad knob)."""

    def __init__(
        self, status: int, code: str, message: str, *, knob: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.knob = status, code, message, knob
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.knob is not None:
            body["knob"] = self.knob
        return json_response(self.status, body, self.headers)


def _bad_knob(knob: str, message: str) -> MarketDataError:
    return MarketDataError(400, "bad_request", message, knob=knob)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


Latency = float | tuple[float, float] | None  # off, fixed ms, or (p50, p99) ms


@dataclass(frozen=True)
class Draw:
    """What the knobs decided for one data request."""

    latency_ms: float
    failure: bool
    status0: bool
    garbage: str | None
    pii: int | None  # the PII variant offset, when PII is injected


class Knobs:
    """The live knobs of one market-data sandbox and its deterministic draws. Thread-safe."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self.initial_seed = seed
        self._reset(seed)

    def _reset(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.latency: Latency = None
        self.rates: dict[str, float] = dict.fromkeys(_RATES, 0.0)

    def clear(self) -> dict[str, Any]:
        with self._lock:
            self._reset(self.initial_seed)
        return self.to_json()

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            latency: Any = self.latency
            if isinstance(latency, tuple):
                latency = {"p50": latency[0], "p99": latency[1]}
            return {"latencyMs": latency, **self.rates, "seed": self.seed}

    def update(self, body: Any) -> dict[str, Any]:
        """PUT /sandbox/knobs: the keys present are set, the others kept. MarketDataError 400 on a bad one."""
        if not isinstance(body, dict):
            raise MarketDataError(400, "bad_request", "the knobs must be a JSON object")
        unknown = sorted(set(body) - set(_KNOB_NAMES))
        if unknown:
            raise _bad_knob(unknown[0], f"unknown knob(s) {unknown}; the knobs are {list(_KNOB_NAMES)}")
        latency = _parse_latency(body["latencyMs"]) if "latencyMs" in body else None
        rates: dict[str, float] = {}
        for name in _RATES:
            if name in body:
                value = body[name]
                if not _number(value) or not 0 <= value <= 1:
                    raise _bad_knob(name, f"{name} must be a number between 0 and 1, got {json.dumps(value)}")
                rates[name] = float(value)
        seed = body.get("seed")
        if "seed" in body and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise _bad_knob("seed", f"seed must be an integer, got {json.dumps(seed)}")
        with self._lock:
            if "latencyMs" in body:
                self.latency = latency
            self.rates.update(rates)
            if isinstance(seed, int):
                self.seed = seed
                self._rng = random.Random(seed)
        return self.to_json()

    def draw(self) -> Draw:
        """Six draws, whatever the knobs, so a seed and a call order always give the same faults."""
        with self._lock:
            u_latency, u_fail, u_status0, u_garbage, u_pii, u_kind = (self._rng.random() for _ in range(6))
            latency, rates = self.latency, dict(self.rates)
        if latency is None:
            latency_ms = 0.0
        elif isinstance(latency, tuple):
            p50, p99 = latency
            sigma = math.log(p99 / p50) / _Z99
            z = NormalDist().inv_cdf(min(max(u_latency, 1e-12), 1 - 1e-12))
            latency_ms = min(p50 * math.exp(sigma * z), MAX_LATENCY_MS)
        else:
            latency_ms = latency
        return Draw(
            latency_ms=latency_ms,
            failure=u_fail < rates["failureRate"],
            status0=u_status0 < rates["status0ErrorRate"],
            garbage=GARBAGE_KINDS[int(u_kind * len(GARBAGE_KINDS))] if u_garbage < rates["garbageRate"] else None,
            pii=int(u_kind * len(PII_KINDS)) if u_pii < rates["piiRate"] else None,
        )


def _parse_latency(value: Any) -> Latency:
    if value is None:
        return None
    if _number(value):
        if not 0 <= value <= MAX_LATENCY_MS:
            raise _bad_knob(
                "latencyMs", f"latencyMs must be between 0 and {MAX_LATENCY_MS:g} ms, got {json.dumps(value)}"
            )
        return float(value) or None
    if isinstance(value, dict) and set(value) == {"p50", "p99"}:
        p50, p99 = value["p50"], value["p99"]
        if not (_number(p50) and _number(p99) and 0 < p50 <= p99 <= MAX_LATENCY_MS):
            raise _bad_knob(
                "latencyMs", f"latencyMs needs 0 < p50 <= p99 <= {MAX_LATENCY_MS:g} ms, got {json.dumps(value)}"
            )
        return float(p50) if p50 == p99 else (float(p50), float(p99))
    raise _bad_knob(
        "latencyMs", f'latencyMs must be null, a number of ms or {{"p50": ms, "p99": ms}}, got {json.dumps(value)}'
    )
