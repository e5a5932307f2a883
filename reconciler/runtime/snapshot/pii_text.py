"""The text PII detection reads: formatting folded away, encodings opened, positions kept.

`find_pii` (reconciler.runtime.snapshot.pii) must not be sidestepped by how personal data is
written: fullwidth or other-script digits, a Cyrillic "В" in an IBAN's country code, a
zero-width space inside a card number, `＠` for `@`, `exämple` for `example`, a card
percent-encoded or in base64. This module turns a value into its *skeleton*, the text the
detectors match, and maps every skeleton position back to the value's own, so a finding's
span is always a span of what the caller passed in.

The skeleton of a value, character by character:

- NFKC compatibility folding (computed as NFKD, combining marks then dropped): fullwidth and
  mathematical letters and digits, `＠` `﹫` `．` `／`, ligatures and superscripts become
  ASCII; accents are removed (`ä` → `a`, so an internationalised domain matches as ASCII);
- invisible characters are dropped: format characters (Cf: zero-width space/joiner, word
  joiner, BOM, soft hyphen, bidi controls), combining marks, and control characters other than
  whitespace;
- any decimal digit of any script (Arabic-Indic, Devanagari, ...) becomes its ASCII digit;
- Latin look-alikes from Cyrillic, Greek and Armenian (`_CONFUSABLE`, the letters of Unicode's
  confusables list that render like a Latin letter) become that letter;
- every separator becomes an ASCII one: all Unicode spaces → " ", dashes and minus signs →
  "-", other punctuation and symbols → "/" (ASCII punctuation is kept as it is).

`SEP` is the regex class of skeleton separators (whitespace and ASCII punctuation except
`@`, `%` and `&`); the detectors allow up to `MAX_GAP` of them between the characters of an
item, so `4111.1111.1111.1111`, `4111/1111/1111/1111`, `4 1 1 1 ...` and `GB82_WEST_...`
are read as the numbers they are.

`encoded_layers` yields what is hidden under an encoding: the percent-decoded text, the text
with HTML character references resolved, and each base64 (standard or URL-safe) token of at
least 16 characters that decodes to printable UTF-8, each with the span of the original it
came from. The pii module scans those too (two levels deep at most).

Values themselves are never changed: this is only what detection reads. Pure code, no I/O.

Called by: reconciler.runtime.snapshot.pii.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_plus

MAX_GAP: Final = 3
"""At most this many separator characters between two characters of one item."""

_SEP_PUNCT: Final = "".join(c for c in string.punctuation if c not in "@%&")
SEP: Final = "[\\s" + re.escape(_SEP_PUNCT) + "]"
"""Regex class of the skeleton's separators."""
SEP_CHARS: Final = frozenset(_SEP_PUNCT) | frozenset(" \t\n\r\f\v")

_CONFUSABLE: Final = {
    # Cyrillic
    **dict(zip("АВЕЅІЈКМНОРСТХУҮӀԀԚԜ", "ABESIJKMHOPCTXYYIDQW", strict=True)),
    **dict(zip("аеѕіјорсхуүӏԁԛԝһ", "aesijopcxyyldqwh", strict=True)),
    # Greek
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹϺ", "ABEZHIKMNOPTYXCM", strict=True)),
    **dict(zip("αοικνρυχϲϳ", "aoikvpuxcj", strict=True)),
    # Armenian and Latin oddities
    **dict(zip("ՕՍօսհոıȷ", "OUouhnij", strict=True)),
}
"""Letters that render as a Latin letter, mapped to it (the subset of Unicode's confusables
that matters for IBAN country codes, NI numbers and e-mail addresses)."""

_DROPPED_CATEGORIES: Final = frozenset({"Cf", "Mn", "Me", "Cc", "Co", "Cn", "Cs"})
_SPACE_CATEGORIES: Final = frozenset({"Zs", "Zl", "Zp"})
_DASHES: Final = frozenset("\u2212\u2043\u2796\ufe63\uff0d")
_DOTS: Final = frozenset("\u3002\uff61\u2024")


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A value's skeleton and, for each of its characters, the index in the value it came from
    (`origin` is None when the skeleton is the value itself)."""

    text: str
    origin: tuple[int, ...] | None
    length: int
    """The length of the original value."""

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The [start, end) of the original value that skeleton [start, end) came from."""
        if self.origin is None:
            return start, end
        if start >= end:
            return self.origin[start] if start < len(self.origin) else self.length, self.length
        return self.origin[start], self.origin[end - 1] + 1


_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _needs_folding(text: str) -> bool:
    return not text.isascii() or _CONTROL.search(text) is not None


def _fold(ch: str) -> str:
    """One original character's contribution to the skeleton (possibly empty)."""
    mapped = _CONFUSABLE.get(ch)
    if mapped is not None:
        return mapped
    if ch.isascii():
        return "" if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ord(ch) == 127 else ch
    category = unicodedata.category(ch)
    if category in _DROPPED_CATEGORIES and not ch.isspace():
        return ""
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if category in _SPACE_CATEGORIES or ch.isspace():
        return " "
    if category == "Pd" or ch in _DASHES:
        return "-"
    if ch in _DOTS:
        return "."
    out = []
    for part in unicodedata.normalize("NFKD", ch):
        if part.isascii():
            out.append(part)
            continue
        part_category = unicodedata.category(part)
        if part_category in _DROPPED_CATEGORIES:
            continue
        if part in _CONFUSABLE:
            out.append(_CONFUSABLE[part])
        elif part_category == "Nd":
            out.append(str(unicodedata.decimal(part)))
        elif part in _DOTS:
            out.append(".")
        elif part_category[0] in "PS":
            out.append("-" if part_category == "Pd" or part in _DASHES else "/")
        elif part_category in _SPACE_CATEGORIES:
            out.append(" ")
        else:
            out.append(part)
    return "".join(out)


def skeleton(text: str) -> Skeleton:
    """The skeleton of `text` (see the module docstring)."""
    if not _needs_folding(text):
        return Skeleton(text, None, len(text))
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        folded = _fold(ch)
        chars.append(folded)
        origin.extend([index] * len(folded))
    return Skeleton("".join(chars), tuple(origin), len(text))


_PERCENT: Final = re.compile(r"%[0-9A-Fa-f]{2}")
_ENTITY: Final = re.compile(r"(?i)&(?:#\d{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});")
_BASE64: Final = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/_=-])")
_MAX_TOKENS: Final = 16
"""At most this many base64 tokens of one value are opened (bounded work)."""


def _printable(text: str) -> bool:
    return bool(text) and all(c.isprintable() or c.isspace() for c in text)


def _base64_text(token: str) -> str | None:
    body = token.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    altchars = b"-_" if ("-" in body or "_" in body) else b"+/"
    if ("-" in body or "_" in body) and ("+" in body or "/" in body):
        return None
    try:
        raw = base64.b64decode(padded, altchars=altchars, validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if _printable(decoded) else None


def encoded_layers(text: str) -> Iterator[tuple[str, int, int]]:
    """(decoded text, start, end of `text` it came from) for each encoding found in `text`."""
    if "%" in text and _PERCENT.search(text):
        yield unquote_plus(text, errors="replace"), 0, len(text)
    if "&" in text and _ENTITY.search(text):
        yield html.unescape(text), 0, len(text)
    for count, match in enumerate(_BASE64.finditer(text)):
        if count >= _MAX_TOKENS:
            break
        decoded = _base64_text(match.group())
        if decoded is not None:
            yield decoded, match.start(), match.end()
