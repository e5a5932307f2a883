"""Bounded JSON reading: the one way recon parses JSON it did not write in this process.

Plans, state, journals, lock objects, `_metadata.json` from the archive, platform responses
and the sandbox's files may all come from someone else (a pull request, a colleague, a
compromised server). `loads` refuses, with `JsonProblem` (a ValueError), input that is
larger than `max_bytes` or nested deeper than `max_depth`, instead of letting the
interpreter's recursion limit or memory decide. The nesting is measured on the text before
parsing, over its brackets outside strings, by C-speed passes (about half a parse on a
large state), so a 100,000-deep document never reaches the recursive decoder.

`MAX_DEPTH` (64) is far above anything recon writes (plans and state nest about 10 deep);
callers reading remote bodies pass their own `max_bytes`.

Called by: reconciler.state, reconciler.engine.plan, the providers' response readers,
reconciler.runtime and reconciler.sandbox. Imports nothing of the package.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
MAX_BYTES = 256 * 1024 * 1024
"""Default size bound: far above any state or plan recon writes (a 10,000-resource state is
about 20 MB), low enough that a hostile file cannot exhaust memory by being read."""

_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
_PAIR = re.compile(rb"\[\]|\{\}")


class JsonProblem(ValueError):
    """The text is not JSON recon will read: too large, too deep or malformed. The message
    says which and never quotes the input (it may hold a secret)."""


def _structure(data: bytes) -> bytes:
    """Only the brackets of `data` that are outside strings: escapes are dropped first (an
    escaped backslash, then an escaped quote), so every remaining quote opens or closes a
    string, and the text between quote pairs is dropped."""
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    return b"".join(kept.split(b'"')[::2])


def deeper_than(data: bytes, limit: int) -> bool:
    """Whether arrays and objects in `data` (JSON text) nest more than `limit` levels.

    Innermost pairs are removed round by round, in C: a round of two `bytes.replace` lowers
    the height by one or two, so a text still non-empty after `limit` rounds is too deep,
    and one emptied within `limit / 2` rounds is not. Only in between (a deep text) is the
    exact one-level-per-round pass run."""
    structure = _structure(data)
    rest, rounds = structure, 0
    while rest and rounds < limit:
        rest = rest.replace(b"[]", b"").replace(b"{}", b"")
        rounds += 1
    if rest:
        return True
    if 2 * rounds <= limit:
        return False
    rest, rounds = structure, 0
    while rest and rounds < limit:
        rest = _PAIR.sub(b"", rest)
        rounds += 1
    return bool(rest)


def loads(text: str | bytes, *, what: str = "JSON", max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Parse `text` as JSON within the bounds, or raise JsonProblem naming `what`."""
    data = text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else text
    if len(data) > max_bytes:
        raise JsonProblem(f"{what} is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if (data.count(b"[") + data.count(b"{")) > max_depth and deeper_than(data, max_depth):
        raise JsonProblem(f"{what} nests deeper than {max_depth} levels, the limit")
    try:
        return json.loads(data)
    except RecursionError:
        raise JsonProblem(f"{what} nests too deeply to read") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        position = f" at line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
        raise JsonProblem(f"{what} is not valid JSON{position} ({reason})") from None
