"""PII detection for market-data snapshot values: IBAN, payment card, US SSN, UK NI number, e-mail.

A market snapshot is attached to a trading call's recording as conversation attributes; it
must carry market data only. A feed (or a misconfigured instrument mapping that reads a CRM
field) can leak personal data into it, so every string value is scanned here before it is
attached. `find_pii` reports *what class* of PII was found and *where* (a span), never the
matched text, so callers can log and alert without repeating the personal data.

Called by: reconciler.runtime.snapshot.guard (once per string value of a snapshot).

Detection rules and the false-positive decisions (market data is full of digits: prices,
volumes, tickers, timestamps; a false positive drops a legitimate field, a false negative
leaks PII into a WORM-retained recording, so the rules lean to catching, but every numeric
class needs a checksum or a structural rule on top of its pattern):

- iban: two letters, two check digits, then 11-30 letters/digits, optionally grouped by single
  spaces or dashes ("GB82 WEST 1234 5698 7654 32"). A candidate counts only if
  `stdnum.iban` accepts it: ISO 7064 mod 97-10 *and* the country's registered BBAN structure
  and length. Free text after the IBAN is tolerated: the longest valid prefix that ends on a
  word boundary is taken. Letters may be lower case (stdnum upper-cases).
- card: 13-19 digits, optionally grouped by single spaces or dashes, Luhn-valid *and* starting
  with a card-network prefix (Visa 4, Mastercard 51-55/2221-2720, Amex 34/37, Discover/
  UnionPay/Maestro 6, Diners/JCB 30/36/38/35, Maestro 50/56-58). The prefix rule keeps
  13-digit epoch-millisecond timestamps (1xxxxxxxxxxxx) and most large volumes out: Luhn alone
  passes one random number in ten. Digits that are part of a decimal ("1234567890123.45") are
  not a card.
- us_ssn: `ddd-dd-dddd` with `stdnum.us.ssn` validity (area 000, 666 and 9xx, group 00,
  serial 0000 and stdnum's list of advertised numbers are invalid). Nine bare digits (or
  `ddd dd dddd`) count only right after an SSN keyword ("SSN", "SS#", "social security
  [number|no]"): a volume or an order id of 123456789 is never an SSN by itself, and nine-digit
  numbers are common in market data. The dashed form is required otherwise.
- uk_nino: two prefix letters (first not D/F/I/Q/U/V, second not D/F/I/O/Q/U/V, and not the
  unallocated BG/GB/KN/NK/NT/TN/ZZ), six digits optionally paired with spaces, and the suffix
  letter A-D, which is required: without it, "AB123456" is as likely an order or contract id.
  There is no checksum; case-insensitive.
- email: local@domain.tld with a dot-separated domain and a 2-63 letter TLD. Feed codes such as
  "@CL" (no local part) or "CL@NYMEX" (no TLD) are not e-mail.

Tickers (EUR/USD, RDSa.L, ES.Z25, NG=F, Natural_Gas_Hub) and ISO-8601 timestamps match none
of these. Overlapping matches keep the first class in the order above (an IBAN's digits can
look like a card number; it is reported once, as an IBAN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from stdnum import iban as _iban  # type: ignore[import-untyped,unused-ignore]
from stdnum import luhn as _luhn  # type: ignore[import-untyped,unused-ignore]
from stdnum.us import ssn as _ssn  # type: ignore[import-untyped,unused-ignore]

PiiClass = Literal["iban", "card", "us_ssn", "uk_nino", "email"]

PII_CLASSES: Final[tuple[PiiClass, ...]] = ("iban", "card", "us_ssn", "uk_nino", "email")
"""Every class `find_pii` reports, in precedence order (for overlapping matches)."""


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


# Fast rejection: every class needs at least six digits or an '@'.
_MIN_DIGITS: Final = 6
_DIGIT_RE: Final = re.compile(r"\d")

_IBAN_START: Final = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}")
_IBAN_MIN, _IBAN_MAX = 15, 34

_CARD_RE: Final = re.compile(r"(?<!\d)(?<!\d[.,])\d(?:[ -]?\d){12,18}(?!\d|[.,]\d)")
_CARD_PREFIX: Final = re.compile(r"4|5[0-8]|2[2-7]|3[04-8]|6")
_MASTERCARD_2: Final = range(2221, 2721)

_SSN_DASHED: Final = re.compile(r"(?<!\d)(?<!\d-)\d{3}-\d{2}-\d{4}(?!\d|-\d)")
_SSN_KEYWORD: Final = re.compile(
    r"(?i)(?<![a-z])(?:ssn|ss#|social\s+security(?:\s+(?:number|no\.?|num\.?|#))?)\s*[:#=]?\s*"
    r"(\d{9}|\d{3} \d{2} \d{4})(?!\d)"
)

_NINO_RE: Final = re.compile(
    r"(?i)(?<![a-z0-9])(?!bg|gb|kn|nk|nt|tn|zz)[a-ceghj-prstw-z][a-ceghj-npr-tw-z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[a-d](?![a-z0-9])"
)

_EMAIL_RE: Final = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"
)


def _iban_matches(text: str) -> list[PiiMatch]:
    found: list[PiiMatch] = []
    length = len(text)
    for start_match in _IBAN_START.finditer(text):
        start = start_match.start()
        # The country code and check digits move to the end for mod 97-10: as digits (A=10 ... Z=35)
        # they are six digits, so a prefix of the BBAN with remainder r passes iff
        # (r * 10**6 + tail) % 97 == 1. The remainder is kept incrementally while walking the
        # alphanumerics (one space or dash allowed between them), so each start costs O(34)
        # and stdnum (structure and length per country) only sees candidates that pass mod 97.
        head = start_match.group().upper()
        tail = int(f"{int(head[0], 36)}{int(head[1], 36)}{head[2:4]}")
        candidates: list[int] = []  # end offsets of prefixes that pass mod 97, shortest first
        remainder = 0
        i = start_match.end()
        count = 4
        while i < length and count < _IBAN_MAX:
            ch = text[i]
            if ch.isascii() and ch.isalnum():
                value = int(ch, 36)
                remainder = (remainder * (100 if value > 9 else 10) + value) % 97
                count += 1
                i += 1
                at_boundary = i >= length or not (text[i].isascii() and text[i].isalnum())
                if count >= _IBAN_MIN and at_boundary and (remainder * 1_000_000 + tail) % 97 == 1:
                    candidates.append(i)
            elif ch in " -" and i + 1 < length and text[i + 1].isascii() and text[i + 1].isalnum():
                i += 1
            else:
                break
        for end in reversed(candidates):  # the longest valid IBAN wins
            if _iban.is_valid(_compact(text[start:end])):
                found.append(PiiMatch("iban", start, end))
                break
    return found


def _compact(text: str) -> str:
    return text.replace(" ", "").replace("-", "")


def _is_card_number(digits: str) -> bool:
    if not _CARD_PREFIX.match(digits):
        return False
    if digits[0] == "2" and int(digits[:4]) not in _MASTERCARD_2:
        return False
    return bool(_luhn.is_valid(digits))


def _card_matches(text: str) -> list[PiiMatch]:
    found: list[PiiMatch] = []
    for match in _CARD_RE.finditer(text):
        digits = _compact(match.group())
        if _is_card_number(digits):
            found.append(PiiMatch("card", match.start(), match.end()))
    return found


def _ssn_matches(text: str) -> list[PiiMatch]:
    found = [PiiMatch("us_ssn", m.start(), m.end()) for m in _SSN_DASHED.finditer(text) if _ssn.is_valid(m.group())]
    for match in _SSN_KEYWORD.finditer(text):
        number = match.group(1).replace(" ", "")
        if _ssn.is_valid(number):
            found.append(PiiMatch("us_ssn", match.start(1), match.end(1)))
    return found


def _nino_matches(text: str) -> list[PiiMatch]:
    return [PiiMatch("uk_nino", m.start(), m.end()) for m in _NINO_RE.finditer(text)]


def _email_matches(text: str) -> list[PiiMatch]:
    return [PiiMatch("email", m.start(), m.end()) for m in _EMAIL_RE.finditer(text)]


def could_contain_pii(text: str) -> bool:
    """Cheap pre-check: False means `find_pii(text)` is certainly empty."""
    if "@" in text:
        return True
    return any(count >= _MIN_DIGITS for count, _ in enumerate(_DIGIT_RE.finditer(text), start=1))


def find_pii(value: str) -> list[PiiMatch]:
    """Every PII finding in `value` (free text is fine), sorted by position, overlaps removed.

    An empty list means no PII of the five classes was found. The matches carry spans only.
    """
    if not could_contain_pii(value):
        return []
    accepted: list[PiiMatch] = []
    for detector in (_iban_matches, _card_matches, _ssn_matches, _nino_matches, _email_matches):
        for match in detector(value):
            if all(match.end <= kept.start or match.start >= kept.end for kept in accepted):
                accepted.append(match)
    accepted.sort(key=lambda m: m.start)
    return accepted


def pii_classes(value: str) -> tuple[PiiClass, ...]:
    """The distinct classes found in `value`, in order of first appearance."""
    return tuple(dict.fromkeys(match.pii_class for match in find_pii(value)))
