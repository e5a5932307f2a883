"""Where an exported recording lives in an archive bucket, and how to read a key back.

Genesys Cloud's S3 recording export writes each recording under

    {orgId}/year=YYYY/month=MM/day=DD/hour=HH/conversation_id={conversationId}/

(UTC, the conversation's start) with the audio file and a `_metadata.json` beside it:

    {"conversationId", "recordingId", "participants": [{"id", "purpose", "userId"?, "queueId"?}],
     "startTime", "endTime", "fileName", "sha256"}     # ISO-8601 UTC times; sha256 of the audio, hex

The folder layout is from REFERENCES §1; the metadata's field names beyond conversationId,
participants, start and end are this project's reading (UNCONFIRMED against a real export).

Pure functions only (no I/O). Called by: the archive legal-hold provider and
`recon verify-archive`. The sandbox's exporter writes the same layout from its own code, on
purpose: a shared bug would otherwise hide itself.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

METADATA_FILE = "_metadata.json"

_PART = r"[^/\x00-\x1f\x7f]+"
_KEY = re.compile(
    rf"(?P<org>{_PART})/year=(?P<y>[0-9]{{4}})/month=(?P<m>[0-9]{{2}})/day=(?P<d>[0-9]{{2}})/hour=(?P<h>[0-9]{{2}})/"
    rf"conversation_id=(?P<conversation>{_PART})/(?P<file>{_PART})"
)
"""Matched whole, on ASCII digits, with no control character in a part: a key
`..._metadata.json\n` or `year=２０２６` is not the export's and is left out."""


@dataclass(frozen=True, slots=True)
class ArchiveKey:
    """One object of an exported recording, read back from its key."""

    org_id: str
    hour: dt.datetime
    """The hour (UTC) the conversation started."""
    conversation_id: str
    file_name: str

    @property
    def is_metadata(self) -> bool:
        return self.file_name == METADATA_FILE


def conversation_prefix(org_id: str, started: dt.datetime, conversation_id: str) -> str:
    """The folder of one conversation's exported recordings (ends with '/')."""
    at = started.astimezone(dt.UTC)
    return f"{org_id}/year={at:%Y}/month={at:%m}/day={at:%d}/hour={at:%H}/conversation_id={conversation_id}/"


def month_prefixes(org_id: str, first: dt.date, last: dt.date) -> list[str]:
    """The month folders from `first` to `last` inclusive, to list a period without
    listing the whole bucket."""
    out: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(f"{org_id}/year={year:04d}/month={month:02d}/")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def parse_key(key: str) -> ArchiveKey | None:
    """The parts of an exported recording's key; None for anything else in the bucket
    (access logs, the evidence log's chain heads, stray uploads)."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    try:
        hour = dt.datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=dt.UTC)
    except ValueError:
        return None
    return ArchiveKey(match["org"], hour, match["conversation"], match["file"])
