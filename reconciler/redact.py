"""The one redaction filter: every secret recon holds is scrubbed from everything it writes.

A server can echo a credential back (`unauthorized: token tsk-... is revoked`), and that text
then travels: into an exception, a log line, an alert, a report, the state. Rather than trust
every path to leave it out, each secret is registered here the moment recon has it, and the
sinks pass their text through `scrub`:

- `register(secret)`: at resolution (`env:` / `file:` references, reconciler.secretrefs), and
  in the clients for what they receive or build (OAuth access tokens, the Basic header, feed
  and TradeSense tokens, webhook URLs, AWS keys). Derived forms are registered with it: URL-
  encoded, JSON-escaped, repr-escaped, HTML-escaped and base64, so a secret quoted in any of
  those is caught too. Values shorter than MIN_LENGTH are not registered (they would blank
  ordinary words and are not credentials anyone issues).
- `scrub(text)` replaces every registered form with REDACTED; `scrub_data` does it for every
  string (keys too) in JSON-like data; `clip(text, n)` scrubs before it truncates, so a cut
  cannot leave half a secret behind.
- Sinks: `install()` wraps the process's stdout and stderr (`ScrubbingStream`) and puts
  `ScrubFilter` on the root logger's handlers (call `filter_handler` for handlers made
  later). The CLI calls it first thing; the runtime's platform-writer child too. Writers of
  reports, plans, state records and alert payloads scrub what they write.

Thread-safe: registration takes a lock and publishes a new compiled pattern; `scrub` reads
whichever pattern is current. With nothing registered, `scrub` returns its input at once.

Called by: reconciler.secretrefs, the CLI (reconciler.cli.common / __init__), the Genesys
client, the feed adapters, the TradeSense client, alert delivery, the platform-writer child,
the state session, the explainer of validation errors. Imports nothing of the package.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import sys
import threading
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

REDACTED = "(redacted)"
"""What a secret is replaced by: plain text in every format recon writes (YAML, JSON, HTML, Markdown, CSV)."""
MIN_LENGTH = 4


class _Registry:
    """The registered forms and the one pattern that finds them (None: nothing registered)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forms: set[str] = set()
        self.pattern: re.Pattern[str] | None = None


_registry = _Registry()


def derived_forms(secret: str) -> set[str]:
    """`secret` as it may appear when quoted by a URL, JSON, repr(), HTML or base64."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        base64.b64encode(secret.encode()).decode("ascii"),
    }
    return {form for form in forms if len(form) >= MIN_LENGTH}


def register(*secrets: str | None) -> None:
    """Scrub each of `secrets` (and its derived forms) from all output from now on."""
    added: set[str] = set()
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= MIN_LENGTH:
            added |= derived_forms(secret)
            stripped = secret.strip()
            if stripped != secret and len(stripped) >= MIN_LENGTH:
                added |= derived_forms(stripped)
    with _registry.lock:
        if added <= _registry.forms:
            return
        _registry.forms |= added
        ordered = sorted(_registry.forms, key=len, reverse=True)  # the longest form wins where forms overlap
        _registry.pattern = re.compile("|".join(re.escape(form) for form in ordered))


def forget() -> None:
    """Forget every registered secret. A command starts with none (the CLI group calls this
    before `install`): what a process scrubs is what the command it runs holds, also when
    one process runs several commands (click's test runner, an embedding program)."""
    with _registry.lock:
        _registry.forms = set()
        _registry.pattern = None


def registered() -> int:
    """How many forms are registered (for tests and --verbose)."""
    return len(_registry.forms)


def holds(text: str) -> bool:
    """Whether `text` contains a registered secret."""
    pattern = _registry.pattern
    return pattern is not None and isinstance(text, str) and pattern.search(text) is not None


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by REDACTED."""
    pattern = _registry.pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def scrub_data(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, tuples, strings, scalars) with every string, keys
    included, scrubbed. Returns `value` itself when nothing is registered."""
    if _registry.pattern is None:
        return value
    return _scrub_value(value)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {(scrub(k) if isinstance(k, str) else k): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub_value(v) for v in value)
    return value


def clip(text: str, limit: int) -> str:
    """`text` scrubbed, then cut to `limit` characters (with an ellipsis)."""
    text = scrub(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class ScrubbingStream(io.TextIOBase):
    """A text stream that scrubs everything written through it before passing it on.
    It has no `buffer`: writers cannot reach the raw stream around it."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes with b"" to tell binary streams from text
            raise TypeError("write() argument must be str")
        self.inner.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.inner, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.inner, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str:  # type: ignore[override]
        return str(getattr(self.inner, "errors", None) or "strict")


_STANDARD_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class ScrubFilter(logging.Filter):
    """Scrubs a log record before any formatter sees it: its message (arguments merged in),
    its exception text and recon's extra fields (e.g. an alert's `detail`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _registry.pattern is None:
            return True
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_RECORD_FIELDS:
                setattr(record, key, scrub_data(value))
        return True


_FILTER = ScrubFilter()


def filter_logger(name: str) -> None:
    """Put the scrub filter on the logger `name` itself (once): its records are scrubbed
    before any handler, pytest's and a library's own included."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def filter_handler(handler: logging.Handler) -> logging.Handler:
    """Put the scrub filter on `handler` (once) and return it."""
    if _FILTER not in handler.filters:
        handler.addFilter(_FILTER)
    return handler


def install() -> None:
    """Scrub this process's stdout, stderr and the root logger's handlers (idempotent)."""
    if not isinstance(sys.stdout, ScrubbingStream) and sys.stdout is not None:
        sys.stdout = ScrubbingStream(sys.stdout)
    if not isinstance(sys.stderr, ScrubbingStream) and sys.stderr is not None:
        sys.stderr = ScrubbingStream(sys.stderr)
    for handler in logging.getLogger().handlers:
        filter_handler(handler)
    if logging.lastResort is not None:
        filter_handler(logging.lastResort)
