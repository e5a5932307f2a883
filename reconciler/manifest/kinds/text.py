"""What names, ids, keys and free text may contain: text is what it looks like.

A name that ends in a newline, hides a zero-width space or a right-to-left override, or
spells `а` (Cyrillic) where a reader sees `a`, is a second, different object on the platform
that looks like the first (a look-alike queue nobody regulates). So:

- every pattern is matched whole (`re.fullmatch`; a `$` would also match before a trailing
  newline), on ASCII classes (`[0-9]`, never `\\d`, which matches every script's digits);
- identifiers (resource names, trader ids, turrets, keys, e-mail addresses, object ids on
  the command line) are ASCII only: no look-alike can be typed. E-mail addresses are lower
  case: Genesys Cloud matches users without case, so `Jane@` and `jane@` are one person;
- one-line text (a matter, an owner, a search term, a label value) has no control, invisible
  (zero-width, soft hyphen, byte-order mark), bidirectional-control or line-separator
  character and no leading or trailing whitespace;
- prose (reasons, descriptions) may break lines and use any script, but has no control or
  bidirectional-control character (they make text display in an order other than stored).

The check functions raise ValueError with a message that shows the value escaped (a
trailing newline appears as \\n) and says what to write instead; the Annotated types wrap
them for pydantic. JSON Schema patterns use ECMA-262 semantics, where `$` is the end of text.

Called by: reconciler.manifest.kinds.* and model (field types), reconciler.cli (arguments).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from reconciler.durations import shown

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_PROSE_CONTROLS_ALLOWED = frozenset("\n\r\t")


def _character(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" ({name.lower()})" if name else "")


_PLAIN_PROSE = re.compile(r"[\x20-\x7e\t\n\r]*")


def text_problem(value: str, *, prose: bool = False) -> str | None:
    """What makes `value` unfit as one-line text (or, with `prose`, as free text), or None.

    The common cases are decided at C speed (`isprintable` is false for every control,
    format, separator other than the space, private-use and surrogate character); only text
    they do not settle is looked at character by character."""
    if prose and _PLAIN_PROSE.fullmatch(value):
        return None
    if not prose and value.isprintable() and value == value.strip():
        return None
    for c in value:
        if c in BIDI_CONTROLS:
            return f"contains the bidirectional-text control {_character(c)}, which makes it display in another order"
        category = unicodedata.category(c)
        if prose:
            if (category == "Cc" and c not in _PROSE_CONTROLS_ALLOWED) or category == "Cs":
                return f"contains the control character {_character(c)}"
            continue
        if c in _LINE_BREAKS:
            return "contains a line break"
        if category in ("Cc", "Cs"):
            return f"contains the control character {_character(c)}"
        if category in ("Cf", "Zl", "Zp", "Co"):
            return f"contains the invisible character {_character(c)}"
    if not prose and value != value.strip():
        return "starts or ends with whitespace"
    return None


def _fail(value: str, what: str, problem: str | None, hint: str) -> ValueError:
    because = f": {problem}" if problem else ""
    return ValueError(f"{shown(value)} is not {what}{because}; {hint}")


def identifier_check(pattern: str, what: str, hint: str) -> Callable[[str], str]:
    """A check that a value is ASCII matching `pattern` whole; names the first problem."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value):
            return value
        problem = text_problem(value)
        if problem is None and not value.isascii():
            odd = next(c for c in value if not c.isascii())
            problem = f"contains {_character(odd)}, which is not ASCII (a look-alike of an ASCII character?)"
        raise _fail(value, what, problem, hint)

    return check


def line_check(what: str, *, max_length: int = 256) -> Callable[[str], str]:
    """A check for one-line text of at most `max_length` characters."""

    def check(value: str) -> str:
        problem = text_problem(value)
        if problem is None and len(value) > max_length:
            problem = f"it is {len(value)} characters long"
        if problem is not None:
            raise _fail(value, f"valid {what}", problem, f"write one line of at most {max_length} visible characters")
        return value

    return check


def check_prose(value: str) -> str:
    problem = text_problem(value, prose=True)
    if problem is not None:
        raise _fail(value, "valid text", problem, "remove the character (retype the text if it was pasted)")
    return value


def _schema(pattern: str, description: str, examples: list[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description, "examples": examples})


NAME_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
NAME_HINT = (
    "use 1-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit "
    "(e.g. mifid2-seven-years)"
)
check_name = identifier_check(NAME_PATTERN[1:-1], "a valid name", NAME_HINT)
Name = Annotated[
    str, AfterValidator(check_name), _schema(NAME_PATTERN, "A resource name (DNS label style).", ["energy-desk-gas"])
]

ADDRESS_PATTERN = r"^[A-Z][A-Za-z]+/[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
check_address = identifier_check(
    ADDRESS_PATTERN[1:-1], "a resource address", "write Kind/name (e.g. Queue/energy-desk-gas)"
)
Address = Annotated[
    str, AfterValidator(check_address), _schema(ADDRESS_PATTERN, "Kind/name.", ["Queue/energy-desk-gas"])
]

IDENTIFIER_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._:@+=/-]{0,126}[A-Za-z0-9])?$"
check_identifier = identifier_check(
    IDENTIFIER_PATTERN[1:-1],
    "a valid id",
    "use up to 128 ASCII letters, digits and . _ : @ + = / -, starting and ending with a letter or digit",
)
Identifier = Annotated[
    str, AfterValidator(check_identifier), _schema(IDENTIFIER_PATTERN, "An id as the platform spells it.", ["T-1001"])
]
"""Ids another system issued: a trader id, a turret, a line, a switch's name for a thing."""

KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
check_key = identifier_check(
    KEY_PATTERN[1:-1], "a valid key", "use up to 64 ASCII letters, digits, '_' or '-', starting with a letter or '_'"
)
Key = Annotated[str, AfterValidator(check_key), _schema(KEY_PATTERN, "An attribute key.", ["market_snapshot"])]
"""A key recon writes into a document (a conversation attribute, a market_snapshot field)."""

LABEL_KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$"
check_label_key = identifier_check(
    LABEL_KEY_PATTERN[1:-1],
    "a valid label or annotation key",
    "use up to 128 ASCII letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit",
)
LabelKey = Annotated[str, AfterValidator(check_label_key), _schema(LABEL_KEY_PATTERN, "A label key.", ["desk"])]

EMAIL_PATTERN = r"^[a-z0-9._%+-]{1,64}@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
_check_email_form = identifier_check(
    EMAIL_PATTERN[1:-1], "an e-mail address", "write the user's address in ASCII (e.g. jane.doe@acme.example)"
)


def check_email(value: str) -> str:
    if value.isascii() and value != value.lower():
        raise _fail(
            value,
            "an e-mail address",
            "it has capital letters",
            f"write it in lower case ({value.lower()}): Genesys Cloud matches users without case",
        )
    return _check_email_form(value)


Email = Annotated[
    str, AfterValidator(check_email), _schema(EMAIL_PATTERN, "A user's e-mail address.", ["jane.doe@acme.example"])
]

Line = Annotated[str, AfterValidator(line_check("text")), WithJsonSchema({"type": "string", "maxLength": 256})]
"""One line of text (a matter, an owner, a search term): no invisible characters."""

Prose = Annotated[str, AfterValidator(check_prose), WithJsonSchema({"type": "string"})]
"""Free text (a reason, a description): may break lines; no control characters."""

OBJECT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,255}"
check_object_id = identifier_check(
    OBJECT_ID_PATTERN,
    "a platform object id",
    "copy the id from the platform (up to 256 ASCII letters, digits and . _ : @ + = -; no '/')",
)
"""A platform object's id given on the command line (`recon import`): it ends up in API
paths, so it may not hold '/', '?', '#', '%' or whitespace."""
