"""Spreadsheet-safe CSV: the one writer of every CSV recon produces.

A CSV recon writes holds values from outside: conversation and recording ids, feed values,
switch CDR fields, reviewers' notes. Opened in Excel, LibreOffice Calc or Google Sheets, a
cell whose text starts with `=`, `+`, `-` or `@` is evaluated as a formula
(`=cmd|' /C calc'!A0`, `=HYPERLINK(...)` that sends other cells away). The guard follows
OWASP's CSV-injection advice and ASVS 1.2.10:

- a text cell whose first character is a tab, CR, LF or NUL, or whose first non-blank
  character is `=`, `+`, `-` or `@`, gets a leading `'` (the spreadsheets' "this is text"
  mark). Blanks are skipped because LibreOffice's "trim spaces" import option would strip
  them and then evaluate. The character is compared after Unicode NFKC normalisation, so
  the fullwidth and small forms `＝ ＋ － ＠ ﹦ ﹢ ﹣ ﹫` (which some spreadsheet locales
  and input methods treat as their ASCII forms) are guarded too: no value recon writes
  legitimately starts with them, so guarding costs nothing and is one less thing to trust;
- every text cell containing a quote, a separator that a spreadsheet may pick instead of the
  comma (`,` `;` tab `|`), a line break, or blanks at either end is quoted (RFC 4180, quotes
  doubled): `x;=cmd|...` cannot become two cells, the second a formula, when opened with
  `;` as the separator;
- numbers stay numbers: an int, a finite float or a Decimal is written bare, and so is a text
  that is exactly a decimal number (`-5`, `+1.5`, `2.4e-3`): a spreadsheet reads those as a
  value, never as a formula, so negative prices and offsets stay usable. `-2+3` is not a
  number and is guarded. None is an empty cell; True/False are `true`/`false`; a list or
  mapping is its compact JSON.

Lines end with `\\n` (what recon's CSVs always used; every spreadsheet accepts it).
Reading the output with Python's `csv` module gives back the guarded text.

Called by: the capture-verification report (reconciler.runtime.verification.report_render)
and `recon search --format csv` (reconciler.cli.search_commands). Imports nothing of the
package (a foundation module: every layer may use it).
"""

from __future__ import annotations

import decimal
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

FORMULA_LEAD = frozenset("=+-@")
"""Characters that start a formula (compared after NFKC normalisation)."""
CONTROL_LEAD = frozenset("\t\r\n\0")
"""Characters that are guarded when a cell starts with them."""
GUARD = "'"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_QUOTE_IF = re.compile(r'[",;|\t\r\n]|^\s|\s$')


def cell_text(value: object) -> str:
    """The text of one cell, guarded against formula injection (not yet quoted)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return GUARD + text if needs_guard(text) else text


def needs_guard(text: str) -> bool:
    """Whether a spreadsheet could read `text` as a formula (see the module docstring)."""
    if not text or _NUMBER.fullmatch(text):
        return False
    if text[0] in CONTROL_LEAD:
        return True
    stripped = text.lstrip()
    if not stripped:
        return False
    return unicodedata.normalize("NFKC", stripped[0])[:1] in FORMULA_LEAD


def field(value: object) -> str:
    """One cell as written in the file: guarded, and quoted when it must be."""
    text = cell_text(value)
    if _QUOTE_IF.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def line(values: Iterable[object]) -> str:
    """One CSV line (with its `\\n`). A line of one empty cell is written `""`, as Python's
    csv module does, so that it is not read back as a line of no cells."""
    fields = [field(value) for value in values]
    if fields == [""]:
        return '""\n'
    return ",".join(fields) + "\n"


def render(header: Sequence[str], rows: Iterable[Iterable[object]]) -> str:
    """A whole CSV: the header line, then one line per row."""
    return line(header) + "".join(line(row) for row in rows)
