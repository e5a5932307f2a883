"""PII detection for market-data snapshot values: IBAN, payment card, US SSN, UK NI number,
e-mail, international phone number.

A market snapshot is attached to a trading call's recording as conversation attributes; it
must carry market data only. A feed (or a misconfigured instrument mapping that reads a CRM
field) can leak personal data into it, so every string value is scanned here before it is
attached. `find_pii` reports *what class* of PII was found and *where* (a span of the value as
given), never the matched text, so callers can log and alert without repeating the personal data.

Called by: reconciler.runtime.snapshot.guard (once per string value of a snapshot, and once over
its string values joined, for items split across fields).

Formatting cannot hide an item. Detection reads the value's skeleton (pii_text.skeleton):
NFKC-folded (fullwidth and other-script digits, `＠`, accents removed), invisible characters
(zero-width, soft hyphen, bidi and control characters) dropped, Cyrillic/Greek/Armenian
look-alike letters mapped to Latin, every Unicode space or dash made ASCII. Between any two
characters of an item up to three separators are allowed: whitespace or ASCII punctuation
other than `@ % &` (dots, slashes, underscores, colons, pipes, plus signs...), so
`GB82.WEST.1234.5698.7654.32`, `4111/1111/1111/1111`, `4 1 1 1 1 1 ...` and
`AB-12-34-56-C` are what they are. Percent-encoded text, HTML character references and base64
tokens (16 characters or more, decoding to printable UTF-8) are opened and scanned as well,
two levels deep; such a finding's span is the encoded token's.

Detection rules and the false-positive decisions (market data is full of digits: prices,
volumes, tickers, timestamps; a false positive drops a legitimate field, a false negative
leaks PII into a WORM-retained recording, so the rules lean to catching, but every numeric
class needs a checksum or a structural rule on top of its pattern):

- iban: two letters, two check digits, then letters/digits, 15-34 in all, starting at a word
  start and ending at a word end. A candidate counts only if `stdnum.iban` accepts it: ISO 7064
  mod 97-10 *and* the country's registered BBAN structure and length (the longest valid one
  from a start wins). Lower case is fine.
- card: 13-19 digits of one run (digit groups joined by separators), Luhn-valid *and* starting
  with a card-network prefix (Visa 4, Mastercard 51-55/2221-2720, Amex 34/37, Discover/
  UnionPay/Maestro 6, Diners/JCB 30/36/38/35, Maestro 50/56-58). Any window of whole groups
  counts, so a card followed by its expiry (`4111 1111 1111 1111 12/26`) or preceded by a
  number is still found. The prefix rule keeps 13-digit epoch-millisecond timestamps
  (1xxxxxxxxxxxx) out: Luhn alone passes one random number in ten. Not part of a run: the
  fraction of a decimal number (`1234567890123.45` is checked as 1234567890123; a single `.`
  or `,` between two digit groups is a decimal point), and valid calendar dates and times of
  day (`27.10.2023 14:30:00`), so a timestamp's digits never add up to a card.
- us_ssn: three consecutive digit groups of 3, 2 and 4 digits with any separators
  (`536-90-4399`, `536.90.4399`, `536 90 4399`), valid per `stdnum.us.ssn` (area 000, 666 and
  9xx, group 00, serial 0000 and advertised numbers are invalid). Nine digits in other
  groupings count only right after an SSN keyword ("SSN", "SS#", "social security [number]"):
  a volume or an order id of 123456789 is never an SSN by itself.
- uk_nino: two prefix letters (first not D/F/I/Q/U/V, second not D/F/I/O/Q/U/V, and not the
  unallocated BG/GB/KN/NK/NT/TN/ZZ), six digits and the suffix letter A-D, which is required:
  without it, "AB123456" is as likely an order or contract id. There is no checksum.
- email: local@domain.tld, Unicode letters allowed (internationalised addresses), a
  dot-separated domain and a TLD of 2-63 letters (or `xn--`). `@` may be spaced or written
  `[at]`/`(at)`/`{at}`/`<at>`, a dot `[dot]`/`(dot)`; the bare-word form `jane at example dot com`
  counts only with at least one bare ` dot ` (so "delivery at NBP.gas" is not an address).
  A pattern, not email-validator: that library validates one whole address and rejects
  near-misses (consecutive dots, reserved names) that are still somebody's address; here
  addresses are *found* in free text. Feed codes such as "@CL" (no local part) or "CL@NYMEX"
  (no TLD) are not e-mail.
- phone: an international number written with `+` (`+44 20 7946 0958`, `+1 (212) 555-0123`),
  valid per the `phonenumbers` library (Google's libphonenumber metadata: the country's number
  plan and length). National numbers without a country code are out of scope: a ten-digit
  national number is indistinguishable from a volume or an order id.

Out of scope, deliberately: letters standing in for digits (`4111 l111 ...`: O/0 and l/1 cannot
be told from codes); a card split into two decimal-looking halves (`4111.1111 1111.1111`, read
as two prices); hex or other encodings than the three above; national ids other than the US
SSN and UK NI number (the seeds' regimes, FCA and SEC/FINRA); items split across *numeric*
JSON fields (the guard joins string fields only: joining volumes and prices would make
Luhn-valid windows of legitimate numbers).

Tickers (EUR/USD, RDSa.L, ES.Z25, NG=F, Natural_Gas_Hub), ISINs and ISO-8601 timestamps match
none of these. Overlapping matches keep the first class in the order above (an IBAN's digits
can look like a card number; it is reported once, as an IBAN).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from stdnum import iban as _iban  # type: ignore[import-untyped,unused-ignore]
from stdnum.us import ssn as _ssn  # type: ignore[import-untyped,unused-ignore]

from reconciler.runtime.snapshot.pii_text import MAX_GAP, SEP, SEP_CHARS, Skeleton, encoded_layers, skeleton

PiiClass = Literal["iban", "card", "us_ssn", "uk_nino", "email", "phone"]

PII_CLASSES: Final[tuple[PiiClass, ...]] = ("iban", "card", "us_ssn", "uk_nino", "email", "phone")
"""Every class `find_pii` reports, in precedence order (for overlapping matches)."""

MAX_DEPTH: Final = 2
"""Encodings are opened this many levels deep (base64 of percent-encoded text, ...)."""


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One PII finding: its class and the [start, end) span in the scanned text.

    Deliberately holds no text, so that repr/str of a match (or of anything containing one)
    cannot leak the personal data.
    """

    pii_class: PiiClass
    start: int
    end: int

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


Span = tuple[int, int]
"""A [start, end) span of the skeleton."""

_MIN_DIGITS: Final = 6
_AT_WORD: Final = re.compile(r"(?i)\bat\b")
_TRIGGER: Final = re.compile(r"[@%&+]|(?i:\bat\b)|[A-Za-z0-9+/_-]{16,}")
_DIGIT_GROUP: Final = re.compile(r"[0-9]+")
_DATE_TIME: Final = re.compile(
    r"(?<![0-9])(?:"
    r"(?:19|20|21)[0-9]{2}([-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12][0-9]|3[01])"  # 2023-10-27
    r"|(?:0?[1-9]|[12][0-9]|3[01])([-./])(?:0?[1-9]|1[0-2])\2(?:19|20|21)[0-9]{2}"  # 27.10.2023
    r"|(?:0?[1-9]|1[0-2])([-./])(?:0?[1-9]|[12][0-9]|3[01])\3(?:19|20|21)[0-9]{2}"  # 10/27/2023
    r"|(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::(?:[0-5][0-9]|60)(?:[.,][0-9]{1,9})?)?"  # 14:30:00.123
    r")(?![0-9])"
)
_CARD_PREFIX: Final = re.compile(r"4|5[0-8]|2[2-7]|3[04-8]|6")
_MASTERCARD_2: Final = range(2221, 2721)
_CARD_DIGITS: Final = range(13, 20)
_LUHN_DOUBLE: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_SSN_GROUPS: Final = (3, 2, 4)

_S: Final = f"{SEP}{{0,{MAX_GAP}}}"
_SSN_KEYWORD: Final = re.compile(
    r"(?i)(?<![a-z])(?:ssn|ss#|social\s*security(?:\s*(?:number|no|num|#))?)[\s:#=.\-]*(?=[0-9])"
)
_NINO_RE: Final = re.compile(r"(?=[A-Z]{2}[0-9]{6}[A-D])")
_NINO_FIRST: Final = frozenset("ABCEGHJKLMNOPRSTWXYZ")
_NINO_SECOND: Final = frozenset("ABCEGHJKLMNPRSTWXYZ")
_NINO_UNALLOCATED: Final = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})

_LOCAL: Final = r"(?:\"[^\"\n]{1,64}\"|[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*)"
_LABEL: Final = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD: Final = r"(?:xn--[a-z0-9-]{1,59}|[^\W\d_]{2,63})"
_AT: Final = r"(?:\s*@\s*|\s*[\[({<]\s*at\s*[\])}>]\s*)"
_DOT: Final = r"(?:\.|\s*[\[({<]\s*dot\s*[\])}>]\s*)"
_EMAIL_RE: Final = re.compile(
    rf"(?i)(?<![\w.+%-]){_LOCAL}{_AT}(?:{_LABEL}{_DOT})+{_TLD}(?![\w-])",
)
_BARE_DOT: Final = r"(?:\s+dot\s+|\.)"
_EMAIL_WORDS_RE: Final = re.compile(
    rf"(?i)(?<![\w.+%-])[\w+-]+(?:{_BARE_DOT}[\w+-]+)*\s+at\s+(?:{_LABEL}{_BARE_DOT})+{_TLD}(?![\w-])",
)
_IBAN_START: Final = re.compile(r"(?=[A-Z]{2}[0-9]{2})")
_ALNUM_GROUP: Final = re.compile(r"[A-Za-z0-9]+")
_SEP_RUN: Final = re.compile(f"{SEP}+")
_PHONE_START: Final = re.compile(r"(?<![0-9A-Za-z])\+")
_PHONE_DIGITS: Final = range(8, 16)  # E.164: at most 15 digits with the country code
_PHONE_STRETCH: Final = re.compile(rf"[0-9](?:{_S}[0-9]){{0,15}}")
_PHONE_GROUP: Final = re.compile(r"[0-9]+")
_MAX_PHONE_PARSES: Final = 8
"""At most this many candidate numbers of one value are parsed (up to 0.5 ms each)."""


def _is_sep(text: str) -> bool:
    return 0 < len(text) <= MAX_GAP and all(c in SEP_CHARS for c in text)


# ---------------------------------------------------------------- digit runs (card, SSN)


def _digit_runs(text: str) -> list[list[Span]]:
    """Digit groups joined by separators into runs; dates, times and decimal fractions break runs."""
    masked = [m.span() for m in _DATE_TIME.finditer(text)]
    runs: list[list[Span]] = []
    current: list[Span] = []
    last_end = -1
    for match in _DIGIT_GROUP.finditer(text):
        start, end = match.span()
        if any(m_start <= start and end <= m_end for m_start, m_end in masked):
            current, last_end = _close(runs, current), -1
            continue
        gap = text[last_end:start] if current else ""
        if current and _is_sep(gap):
            earlier_gap = text[current[-2][1] : current[-1][0]] if len(current) > 1 else ""
            next_tight = text[end : end + 1] in (".", ",") and text[end + 1 : end + 2].isdigit()
            if gap in (".", ",") and earlier_gap not in (".", ",") and not next_tight:
                current, last_end = _close(runs, current), -1  # a decimal fraction
                continue
            current.append((start, end))
        else:
            _close(runs, current)
            current = [(start, end)]
        last_end = end
    _close(runs, current)
    return runs


def _close(runs: list[list[Span]], current: list[Span]) -> list[Span]:
    if current:
        runs.append(current)
    return []


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        value = ord(ch) - 48
        total += _LUHN_DOUBLE[value] if index & 1 else value
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    if len(digits) not in _CARD_DIGITS or not _CARD_PREFIX.match(digits):
        return False
    if digits[0] == "2" and int(digits[:4]) not in _MASTERCARD_2:
        return False
    return _luhn_ok(digits)


def _card_spans(text: str, runs: Sequence[list[Span]]) -> list[Span]:
    found: list[Span] = []
    for run in runs:
        i = 0
        while i < len(run):
            if text[run[i][0]] not in "23456":  # no network prefix starts here
                i += 1
                continue
            best, digits, j = -1, "", i
            while j < len(run) and len(digits) < _CARD_DIGITS.stop - 1:
                digits += text[run[j][0] : run[j][1]]
                if len(digits) in _CARD_DIGITS and _is_card_number(digits):
                    best = j
                j += 1
            if best >= 0:
                found.append((run[i][0], run[best][1]))
                i = best + 1
            else:
                i += 1
    return found


def _ssn_spans(text: str, runs: Sequence[list[Span]]) -> list[Span]:
    found: list[Span] = []
    run_at: dict[int, tuple[list[Span], int]] = {}
    for run in runs:
        for index, (start, _end) in enumerate(run):
            run_at[start] = (run, index)
        for i in range(len(run) - 2):
            window = run[i : i + 3]
            if tuple(e - s for s, e in window) == _SSN_GROUPS:
                number = "".join(text[s:e] for s, e in window)
                if _ssn.is_valid(number):
                    found.append((window[0][0], window[-1][1]))
    for keyword in _SSN_KEYWORD.finditer(text):
        located = run_at.get(keyword.end())
        if located is None:
            continue
        run, index = located
        digits = ""
        for start, end in run[index:]:
            digits += text[start:end]
            if len(digits) >= 9:
                if len(digits) == 9 and _ssn.is_valid(digits):
                    found.append((run[index][0], end))
                break
    return found


# ---------------------------------------------------------------- letters and digits (IBAN, NINO)


@dataclass(frozen=True, slots=True)
class _Words:
    """The ASCII letters and digits of a text, upper-cased and without what is between them:
    `chars[k]` came from `pos[k]`; `segment[k]` changes where the gap before a word is not a
    join (at most MAX_GAP separators); `starts`/`ends` flag the first/last character of a word."""

    chars: str
    pos: tuple[int, ...]
    segment: tuple[int, ...]
    starts: frozenset[int]
    ends: frozenset[int]

    def item(self, a: int, b: int) -> bool:
        """Whether chars[a:b] is whole words joined only by separators."""
        return a in self.starts and (b - 1) in self.ends and self.segment[a] == self.segment[b - 1]


def _words(text: str) -> _Words:
    chars: list[str] = []
    pos: list[int] = []
    segment: list[int] = []
    starts: set[int] = set()
    ends: set[int] = set()
    current, last_end = 0, -1
    for match in _ALNUM_GROUP.finditer(text):
        start, end = match.span()
        if last_end < 0 or not _is_sep(text[last_end:start]):
            current += 1
        starts.add(len(pos))
        chars.append(match.group().upper())
        pos.extend(range(start, end))
        segment.extend([current] * (end - start))
        ends.add(len(pos) - 1)
        last_end = end
    return _Words("".join(chars), tuple(pos), tuple(segment), frozenset(starts), frozenset(ends))


def _iban_spans(words: _Words) -> list[Span]:
    found: list[Span] = []
    chars = words.chars
    for start_match in _IBAN_START.finditer(chars):
        a = start_match.start()
        if a not in words.starts:
            continue
        # mod 97-10 with the country code and check digits moved to the end: as digits
        # (A=10 ... Z=35) they are six digits, so a BBAN prefix with remainder r passes iff
        # (r * 10**6 + tail) % 97 == 1; stdnum (structure, length) sees only those that pass.
        tail = int(f"{int(chars[a], 36)}{int(chars[a + 1], 36)}{chars[a + 2 : a + 4]}")
        remainder, passing = 0, []
        for b in range(a + 4, min(a + 34, len(chars))):
            value = int(chars[b], 36)
            remainder = (remainder * (100 if value > 9 else 10) + value) % 97
            if b - a >= 14 and (remainder * 1_000_000 + tail) % 97 == 1 and words.item(a, b + 1):
                passing.append(b + 1)
        for b in reversed(passing):
            if _iban.is_valid(chars[a:b]):
                found.append((words.pos[a], words.pos[b - 1] + 1))
                break
    return found


def _nino_spans(words: _Words) -> list[Span]:
    found: list[Span] = []
    for match in _NINO_RE.finditer(words.chars):
        a = match.start()
        first, second = words.chars[a], words.chars[a + 1]
        if (
            words.item(a, a + 9)
            and first in _NINO_FIRST
            and second in _NINO_SECOND
            and first + second not in _NINO_UNALLOCATED
        ):
            found.append((words.pos[a], words.pos[a + 8] + 1))
    return found


# ---------------------------------------------------------------- e-mail, phone


def _email_spans(text: str) -> list[Span]:
    spans = [m.span() for m in _EMAIL_RE.finditer(text)]
    spans += [m.span() for m in _EMAIL_WORDS_RE.finditer(text) if re.search(r"(?i)\sdot\s", m.group())]
    return spans


def _phone_spans(text: str) -> list[Span]:
    found: list[Span] = []
    budget = _MAX_PHONE_PARSES
    for plus in _PHONE_START.finditer(text):
        group_ends = [m.end() for m in _PHONE_GROUP.finditer(text, plus.end(), _phone_stretch_end(text, plus.end()))]
        for end in reversed(group_ends):
            digits = _SEP_RUN.sub("", text[plus.end() : end])
            if len(digits) not in _PHONE_DIGITS:
                continue
            if budget <= 0:
                return found
            budget -= 1
            if _valid_phone("+" + digits):
                found.append((plus.start(), end))
                break
    return found


def _phone_stretch_end(text: str, start: int) -> int:
    stretch = _PHONE_STRETCH.match(text, start)
    return stretch.end() if stretch else start


def _valid_phone(number: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, None)))
    except phonenumbers.NumberParseException:
        return False


# ---------------------------------------------------------------- find_pii


def could_contain_pii(text: str) -> bool:
    """Cheap pre-check: False means `find_pii(text)` is certainly empty."""
    if not text.isascii() or _TRIGGER.search(text):
        return True
    return sum(map(text.count, "0123456789")) >= _MIN_DIGITS


def _detect(sk: Skeleton) -> list[PiiMatch]:
    """Each detector runs only when the text has what its class needs (digits, '@', '+')."""
    text = sk.text
    digits = sum(map(text.count, "0123456789"))
    spans: list[tuple[PiiClass, list[Span]]] = []
    words = _words(text) if digits >= 4 else None
    if words is not None and len(words.chars) >= 15:
        spans.append(("iban", _iban_spans(words)))
    if digits >= 9:
        runs = _digit_runs(text)
        if digits >= _CARD_DIGITS.start:
            spans.append(("card", _card_spans(text, runs)))
        spans.append(("us_ssn", _ssn_spans(text, runs)))
    if words is not None and digits >= 6:
        spans.append(("uk_nino", _nino_spans(words)))
    if "@" in text or _AT_WORD.search(text):
        spans.append(("email", _email_spans(text)))
    if "+" in text and digits >= _PHONE_DIGITS.start:
        spans.append(("phone", _phone_spans(text)))
    return [PiiMatch(cls, *sk.span(*span)) for cls, found in spans for span in found]


def _find(value: str, depth: int) -> list[PiiMatch]:
    if not could_contain_pii(value):
        return []
    found = _detect(skeleton(value))
    if depth < MAX_DEPTH:
        for decoded, start, end in encoded_layers(value):
            found += [PiiMatch(m.pii_class, start, end) for m in _find(decoded, depth + 1)]
    accepted: list[PiiMatch] = []
    for match in found:
        if all(match.end <= kept.start or match.start >= kept.end for kept in accepted):
            accepted.append(match)
    return accepted


def find_pii(value: str) -> list[PiiMatch]:
    """Every PII finding in `value` (free text is fine), sorted by position, overlaps removed.

    An empty list means no PII of the six classes was found. The matches carry spans only.
    """
    return sorted(_find(value, 0), key=lambda m: m.start)


def pii_classes(value: str) -> tuple[PiiClass, ...]:
    """The distinct classes found in `value`, in order of first appearance."""
    return tuple(dict.fromkeys(match.pii_class for match in find_pii(value)))
