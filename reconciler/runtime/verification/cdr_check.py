"""Every field of a CDR from the switch, checked: a CDR is either a call recon can verify or a
rejection that says what is wrong with it, never a crash and never silently dropped.

`parse_cdr(item, collector, now_ms)` reads one CDR object of a WBA `cdrs` answer
(docs/wba-protocol.md) and returns `(Cdr, reportedAt ms)` or a `CdrRejection`. The rules:

- `cdrId`: 1-128 characters of `A-Z a-z 0-9 . _ : / @ # + -`, starting with a letter or digit
  (`ldn-iptrade-01:000000123`); `traderId` likewise, 1-64 characters (`T-1001`);
- `turret`, `line`: absent/null (read as ""), or up to 64 printable characters (no control or
  format characters); `direction`: absent/null, or one of `in`, `out`, `intercom`;
- `startTime`, `endTime`, `reportedAt`: ISO-8601 strings *with* a zone (`Z` or an offset;
  a time without one is ambiguous and refused), from 2000-01-01 to one day after now;
  `reportedAt` not before `startTime` (the switch reports a call when it ends; one minute of
  slack);
- `durationMs`: an integer from 0 to 24 hours (an open line reconnects daily); without it,
  `endTime` gives it; with both, they must agree within one second; an end before the start
  is refused (that was accepted when `durationMs` was present).

A rejection carries the CDR's id and trader as far as they can be shown (control characters
escaped, cut at 64 characters), the problems, whatever times could be read, and a fingerprint
of the item (SHA-256 of its canonical JSON): the store records a rejection once per
fingerprint, so a re-sent bad CDR is one finding, not one per poll.

Pure functions, no I/O. Called by: reconciler.runtime.verification.wba_schema (and so the WBA
client), tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from reconciler.runtime.verification.model import Cdr

MIN_TIME_MS: Final = 946_684_800_000
"""2000-01-01T00:00:00Z: no switch reports calls from before."""
FUTURE_SLACK_MS: Final = 24 * 3_600_000
MAX_DURATION_MS: Final = 24 * 3_600_000
END_SLACK_MS: Final = 1_000
REPORT_SLACK_MS: Final = 60_000
MAX_TEXT: Final = 64
MAX_TIME_TEXT: Final = 40
DIRECTIONS: Final = ("in", "out", "intercom")
_CDR_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@#+-]{0,127}")
_TRADER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@#+-]{0,63}")
_SHOWN: Final = 64
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS: Final = dt.timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class CdrRejection:
    """A CDR that cannot be verified as sent, and why. Text fields are safe to show."""

    cdr_id: str
    """As far as it can be shown ("(none)" when missing)."""
    trader_id: str
    problems: tuple[str, ...]
    start_ms: int | None
    reported_ms: int | None
    fingerprint: str
    """SHA-256 (hex) of the item's canonical JSON."""

    @property
    def detail(self) -> str:
        return f"CDR {self.cdr_id}: " + "; ".join(self.problems)


def shown(value: Any) -> str:
    """`value` as text that is safe in a report, a log line or an alert: control and format
    characters escaped, at most 64 characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)[:200]
    safe = "".join(
        c if c.isprintable() and unicodedata.category(c) not in ("Cf", "Co", "Cs") else f"\\u{ord(c):04x}" for c in text
    )
    return safe if len(safe) <= _SHOWN else safe[: _SHOWN - 1] + "…"


def fingerprint(item: Any) -> str:
    """SHA-256 of the item's canonical JSON (what makes two sends of it the same)."""
    try:
        text = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(item)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def zoned_ms(value: Any, what: str, problems: list[str], now_ms: int) -> int | None:
    """Epoch ms of a zoned ISO time within bounds, or None with the problem recorded."""
    if value is None:
        problems.append(f"{what} is missing")
        return None
    if not isinstance(value, str):
        problems.append(f"{what} is not a time: {shown(value)}")
        return None
    if len(value) > MAX_TIME_TEXT:
        problems.append(f"{what} is not an ISO time (a {len(value)}-character string)")
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{what} is not an ISO time: {shown(value)}")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(f"{what} has no zone: {shown(value)} (write Z or an offset)")
        return None
    epoch_ms = (moment - _EPOCH) // _MS
    if not MIN_TIME_MS <= epoch_ms <= now_ms + FUTURE_SLACK_MS:
        problems.append(f"{what} {shown(value)} is outside 2000-01-01 .. one day from now")
        return None
    return int(epoch_ms)


def _identifier(item: dict[str, Any], key: str, pattern: re.Pattern[str], problems: list[str]) -> str | None:
    value = item.get(key)
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    if value is None or value == "":
        problems.append(f"no {key}")
    elif not isinstance(value, str):
        problems.append(f"{key} is not a string: {shown(value)}")
    else:
        limit = 128 if key == "cdrId" else 64
        problems.append(f"{key} {shown(value)} is not 1-{limit} characters of A-Z a-z 0-9 . _ : / @ # + -")
    return None


def _text(item: dict[str, Any], key: str, problems: list[str]) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{key} is not a string: {shown(value)}")
        return ""
    if len(value) > MAX_TEXT or any(not c.isprintable() or unicodedata.category(c) == "Cf" for c in value):
        problems.append(f"{key} {shown(value)} is not up to {MAX_TEXT} printable characters")
        return ""
    return value


def _duration(item: dict[str, Any], start: int | None, now_ms: int, problems: list[str]) -> int | None:
    duration = item.get("durationMs")
    end_text = item.get("endTime")
    end = zoned_ms(end_text, "endTime", problems, now_ms) if end_text is not None else None
    if duration is None:
        if end_text is None:
            problems.append("neither durationMs nor endTime")
            return None
        if end is None or start is None:
            return None
        duration = end - start
        if duration < 0:
            problems.append(f"endTime is before startTime (a negative duration, {duration} ms)")
            return None
    elif isinstance(duration, bool) or not isinstance(duration, int):
        problems.append(f"durationMs is not an integer: {shown(duration)}")
        return None
    elif duration < 0:
        problems.append(f"durationMs is negative ({duration} ms)")
        return None
    elif start is not None and end is not None and abs(start + duration - end) > END_SLACK_MS:
        if end < start:
            problems.append("endTime is before startTime")
        else:
            problems.append(f"endTime and durationMs disagree by {abs(start + duration - end)} ms")
        return None
    if duration > MAX_DURATION_MS:
        problems.append(f"durationMs {duration} is over 24 hours")
        return None
    return int(duration)


def parse_cdr(item: Any, collector: str, now_ms: int) -> tuple[Cdr, int] | CdrRejection:
    """One CDR object: (Cdr, reportedAt ms) or the rejection (see the module docstring)."""
    if not isinstance(item, dict):
        return CdrRejection("(none)", "", (f"a CDR is not an object: {shown(item)}",), None, None, fingerprint(item))
    problems: list[str] = []
    cdr_id = _identifier(item, "cdrId", _CDR_ID, problems)
    trader = _identifier(item, "traderId", _TRADER_ID, problems)
    start = zoned_ms(item.get("startTime"), "startTime", problems, now_ms)
    duration = _duration(item, start, now_ms, problems)
    reported = zoned_ms(item.get("reportedAt"), "reportedAt", problems, now_ms)
    if start is not None and reported is not None and reported + REPORT_SLACK_MS < start:
        problems.append("reportedAt is before startTime")
    turret, line = _text(item, "turret", problems), _text(item, "line", problems)
    direction = item.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        problems.append(f"direction {shown(direction)} is not one of {', '.join(DIRECTIONS)}")
    if problems or cdr_id is None or trader is None or start is None or duration is None or reported is None:
        return CdrRejection(
            shown(item.get("cdrId")) if item.get("cdrId") is not None else "(none)",
            shown(item.get("traderId")) if item.get("traderId") is not None else "",
            tuple(problems),
            start,
            reported,
            fingerprint(item),
        )
    cdr = Cdr(cdr_id, collector, trader, turret, line, str(direction or ""), start, duration)
    return cdr, reported
