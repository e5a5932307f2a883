"""Time for the state layer: one injectable clock type and one timestamp format.

Every timestamp recon writes into state and lock files is UTC ISO 8601 to the second
("2026-11-21T09:30:00Z"). Backends take a `clock` argument (default `utc_now`) so that
lease expiry can be exercised without waiting.

Called by: reconciler.state.lock, .lockfile, .backend, .local.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time (timezone-aware)."""


def utc_now() -> datetime:
    """The production clock."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """`moment` as UTC ISO 8601 to the second, e.g. 2026-11-21T09:30:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    """The moment `text` (as written by `iso`) names; None when it is not a timestamp.
    A timestamp without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
