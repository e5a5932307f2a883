"""The jinja2 environment manifests are rendered in: a sandbox whose values are data.

Templates (`*.yaml.j2`) come with a pull request, and so do the `--var-file` values put into
them, so both are hostile input. The environment is jinja2's ImmutableSandboxedEnvironment
(no attribute starting with `_`, no mutation of lists and dicts, StrictUndefined) plus:

**Values are data.** Every `{{ ... }}` prints one YAML scalar's worth of text, checked as
it is printed (jinja2's `finalize`, so it holds for every value whatever filters or
operators made it). Refused, naming the variable when one holds the value:

- a line break (`\\n`, `\\r`, U+0085, U+2028, U+2029) or any other control or invisible
  formatting character: a value cannot add a line, hence no new key or document (a `--var`
  holding `\\n---\\n` and a whole resource used to be accepted);
- a character YAML reads as structure in some context: `# , [ ] { } " ' \\ \\``, `: ` and
  a trailing `:`, and at the start `- `, `? `, `---`, `...`, a space, `& * ! | > % @`;
- a list, map or other object (its Python text is not YAML).

A value that needs any of those is printed with `| tojson`, which writes one JSON value
(a double-quoted string with every such character escaped, or a flow list or map) that
YAML reads back as exactly that value; put it where a whole value goes. The template's
own text, including macros' and `{% set %}` blocks' output (their `{{ }}` were checked),
is the template's: it is not a value.

**Nothing grows without bound.** `*`, `**`, `+` and `%` are intercepted (so jinja2 cannot
fold `9**(9**9)` or `'x' * 2000000000` while compiling, before any limit applies) and
refuse results over MAX_RENDERED_CHARS characters or MAX_INT_BITS bits; `range()` holds at
most MAX_TEMPLATE_RANGE items; `center`, `indent`, `replace`, `join`, `format`, `slice`
and the string methods that pad or repeat check the size they would make first; the output
stops at MAX_RENDERED_CHARS. These are the second line: every render runs in a child
process with CPU, memory and wall-clock limits (reconciler.manifest.render_worker).

**Nothing else is reachable.** `{% include %}`, `{% import %}`, `{% from %}` and
`{% extends %}` are refused when the template is parsed (there is no loader either);
`lipsum` and the `random` filter are removed, so rendering is deterministic.

Called by: reconciler.manifest.render_worker (in the renderer child), and the fuzzing
harness in tests/fuzz.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import threading
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

import jinja2
from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from reconciler.manifest.source import SourceProblem

MAX_RENDERED_CHARS = 10 * 1024 * 1024
MAX_TEMPLATE_RANGE = 10_000
MAX_INT_BITS = 4096
MAX_FIELD_WIDTH = 10_000
TEMPLATE_SECONDS = 10.0

_VALUE_HINT = (
    "print it with `| tojson` (one quoted YAML value, whatever it holds) where a whole value goes, "
    "or pass a value without it"
)


class _Quoted(str):
    """`| tojson` output: one complete JSON value, printed as it is."""

    __slots__ = ()


class _TemplateText(str):
    """The joined output of a macro, a `{% set %}` block or a call block: template text
    whose printed values were already checked."""

    __slots__ = ()


def _template_text(pieces: Iterable[str]) -> str:
    return _TemplateText("".join(pieces))


class ValueProblem(SourceProblem):
    """A printed value that would be read as YAML structure; `text` is the value (kept for
    naming the variable it came from, never put in a message)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(
            "template.value",
            f"the value printed here {reason}; template values are data and cannot add lines, keys or documents",
            hint=_VALUE_HINT,
        )
        self.text = text


_LINE_BREAKS = {"\n": "U+000A", "\r": "U+000D", "\x85": "U+0085", "\u2028": "U+2028", "\u2029": "U+2029"}
_ANYWHERE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029#,\[\]{}\"'\\`]|:(?=\s|$)")
_AT_START = re.compile(r"\s|-(?=\s|$)|---|\.\.\.|[?:&*!|>%@]")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_CHECKED: set[str] = set()
"""Short values already found safe (they repeat: a desk, a region, `true`)."""


def _describe(text: str, index: int) -> str:
    char = text[index]
    if char in _LINE_BREAKS:
        return f"contains a line break ({_LINE_BREAKS[char]})"
    if unicodedata.category(char) in _INVISIBLE:
        return f"contains the control or invisible character U+{ord(char):04X}"
    if char == ":":
        return "contains ': ' (or ends with ':'), which YAML reads as a key"
    return f"contains {char!r}, which YAML reads as structure"


def printed(value: Any) -> Any:
    """jinja2's `finalize`: the text a `{{ }}` prints, or ValueProblem (see the module doc)."""
    if value.__class__ is str:
        text: str = value
    elif isinstance(value, (_Quoted, _TemplateText)) or value is None or isinstance(value, (int, float)):
        return value
    elif isinstance(value, str):
        text = value
    elif isinstance(value, jinja2.Undefined):
        return value  # printing it raises UndefinedError, with the name
    else:
        raise ValueProblem(f"is {_kind(value)}, whose Python text is not YAML", "")
    if text in _CHECKED:
        return text
    found = _ANYWHERE.search(text)
    if found is not None:
        raise ValueProblem(_describe(text, found.start()), text)
    if text == "<<":
        raise ValueProblem("is '<<', which YAML reads as a merge key", text)
    start = _AT_START.match(text)
    if start is not None:
        shown = "a space" if text[0].isspace() else repr(start.group())
        raise ValueProblem(f"starts with {shown}, which YAML reads as structure", text)
    if not text.isascii():
        for index, char in enumerate(text):
            if unicodedata.category(char) in _INVISIBLE:
                raise ValueProblem(_describe(text, index), text)
    if len(text) <= 64 and len(_CHECKED) < 10_000:
        _CHECKED.add(text)
    return text


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, (list, tuple, range)):
        return "a list"
    return f"a {type(value).__name__} object"


def _too_large(what: str, size: int) -> SourceProblem:
    return SourceProblem(
        "template.too-large",
        f"{what} would make {size:,} characters; a template may make at most {MAX_RENDERED_CHARS:,}",
        hint="generate fewer or smaller values",
    )


def _check_size(what: str, size: int) -> None:
    if size > MAX_RENDERED_CHARS:
        raise _too_large(what, size)


_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}|\{[^{}]*?:[^{}]*\{")


def _check_widths(what: str, widths: Iterable[str | None]) -> None:
    for width in widths:
        if width == "*" or (width and len(width) > 7) or (width and int(width) > MAX_FIELD_WIDTH):
            raise SourceProblem(
                "template.too-large",
                f"{what} asks for a field wider than {MAX_FIELD_WIDTH:,} characters (or a computed width)",
                hint="write the width as a number up to 10,000",
            )


def _check_percent_format(text: str) -> None:
    for match in _PERCENT_FIELD.finditer(text):
        _check_widths("the % format", match.groups())


def _check_brace_format(text: str) -> None:
    for match in _FORMAT_SPEC.finditer(text):
        if match.group(1) is None:
            _check_widths("format()", ["*"])
        _check_widths("format()", re.findall(r"\d+", match.group(1) or ""))


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


class _RenderSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=printed,
        )
        self.concat = _template_text  # type: ignore[method-assign]
        self.globals["range"] = _bounded_range
        del self.globals["lipsum"]
        del self.filters["random"]
        self.filters.update(
            tojson=_to_json,
            center=_center,
            indent=_indent,
            replace=_replace,
            join=_join,
            format=_format,
            slice=_slice,
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if _power_bits(left, right) > MAX_INT_BITS:
                raise SourceProblem(
                    "template.number",
                    f"{left} ** {right} has more than {MAX_INT_BITS:,} bits",
                    hint="templates compute small numbers only",
                )
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise SourceProblem("template.number", f"a product of more than {MAX_INT_BITS:,} bits")
            elif isinstance(right, int) and _length(left):
                _check_size("repeating a text or list", _length(left) * right)
            elif isinstance(left, int) and _length(right):
                _check_size("repeating a text or list", _length(right) * left)
        elif operator == "+":
            _check_size("joining two texts or lists", _length(left) + _length(right))
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            _check_string_method(owner, getattr(target, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _power_bits(left: Any, right: Any) -> int:
    """About how many bits `left ** right` has, for integers (0 for anything else)."""
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        return (abs(left).bit_length() - 1) * right
    return 0


def _check_string_method(text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Pre-check the str methods whose result can be far larger than their inputs."""
    first = args[0] if args else None
    if name in ("ljust", "rjust", "center", "zfill") and isinstance(first, int):
        _check_size(f"{name}()", first)
    elif name == "expandtabs":
        tab = first if isinstance(first, int) else kwargs.get("tabsize", 8)
        _check_size("expandtabs()", len(text) + text.count("\t") * max(int(tab), 0))
    elif name == "replace" and len(args) >= 2:
        _check_size("replace()", _replaced_size(text, str(args[0]), str(args[1]), args[2] if len(args) > 2 else -1))
    elif name == "join" and isinstance(first, (list, tuple, str, range)):
        _check_size("join()", len(text) * max(len(first) - 1, 0))
    elif name in ("format", "format_map"):
        _check_brace_format(text)


def _replaced_size(text: str, old: str, new: str, count: int | None) -> int:
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * max(len(new) - len(old), 0)


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_TEMPLATE_RANGE:
        raise SourceProblem(
            "template.range",
            f"range() of {len(result):,} items exceeds the limit of {MAX_TEMPLATE_RANGE:,}",
        )
    return result


def _json_default(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"tojson cannot print {_kind(value)}")


_JSON_ESCAPED = re.compile(r"[^\x20-\x7e]|[<>&']")


def _yaml_escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in "<>&'" or not char.isprintable():
        code = ord(char)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char


def _to_json(value: Any, indent: int | None = None) -> str:
    """jinja2's tojson on one line (sorted keys, `<>&'` escaped as jinja2 does), marked as a
    complete value; dates print as ISO text. Written for YAML to read back: a character that
    is not printable is escaped (`\\U` for those beyond the BMP: YAML refuses the surrogate
    pairs JSON would write), printable ones are written as they are."""
    if indent is not None:
        raise TypeError("tojson prints one line in manifests; remove the indent")
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False, default=_json_default)
    return _Quoted(_JSON_ESCAPED.sub(_yaml_escape, text))


def _center(value: Any, width: int = 80) -> str:
    _check_size("center()", width if isinstance(width, int) else 0)
    return jinja_filters.do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    per_line = width if isinstance(width, int) else len(str(width))
    _check_size("indent()", len(text) + (text.count("\n") + 1) * max(per_line, 0))
    return jinja_filters.do_indent(text, width, first, blank)


@jinja2.pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    _check_size("replace()", _replaced_size(str(s), str(old), str(new), count))
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


@jinja2.pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    _check_size("join()", len(str(d)) * max(len(items) - 1, 0))
    return jinja_filters.sync_do_join(eval_ctx, items, d, attribute)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_percent_format(str(value))
    return jinja_filters.do_format(value, *args, **kwargs)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if not isinstance(slices, int) or slices > MAX_TEMPLATE_RANGE:
        raise SourceProblem("template.range", f"slice() into more than {MAX_TEMPLATE_RANGE:,} parts")
    return jinja_filters.sync_do_slice(value, slices, fill_with)


_ENVIRONMENT = _RenderSandbox()
_LONG_NUMBER = re.compile(r"\d{4301}")
_OTHER_FILES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def compile_template(text: str) -> jinja2.Template:
    """Parse and compile `text`; SourceProblem for a syntax error or a reference to another file."""
    try:
        tree = _ENVIRONMENT.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise SourceProblem("template.syntax", f"template syntax: {exc.message}", exc.lineno) from None
    except ValueError:  # jinja2's lexer converting a number beyond Python's 4,300 digits
        long_number = _LONG_NUMBER.search(text)
        line = text.count("\n", 0, long_number.start()) + 1 if long_number else 0
        raise SourceProblem("template.number", "a number of more than 4,300 digits", line) from None
    for node in _statements(tree):
        if not isinstance(node, _OTHER_FILES):
            continue
        raise SourceProblem(
            "template.include",
            f"{{% {type(node).__name__.lower().replace('fromimport', 'from')} %}}: a template cannot use other files",
            node.lineno,
            hint="put what the template needs in the file itself; shared values go in a --var-file",
        )
    try:
        return _ENVIRONMENT.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise SourceProblem("template.syntax", f"template syntax: {exc.message}", exc.lineno) from None


def _statements(node: nodes.Node) -> Iterator[nodes.Node]:
    """Every statement under `node`. include, import and extend are statements, so only
    statement lists are walked, not expressions (a template's big literal tables)."""
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, nodes.Stmt):
                    yield item
                    yield from _statements(item)


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt rendering after `seconds` (main thread only; the renderer child's parent
    enforces a deadline of its own in every case)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise SourceProblem("template.timeout", f"rendering took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render(text: str, variables: Mapping[str, Any], seconds: float = TEMPLATE_SECONDS) -> str:
    """Render jinja2 `text` in this process. Raises SourceProblem with the template line.

    Only the renderer child calls this for manifests (it adds the process limits); use
    reconciler.manifest.render_worker everywhere else."""
    try:
        with _time_limit(seconds):
            template = compile_template(text)
            pieces: list[str] = []
            size = 0
            stream = template.generate(dict(variables))
            for piece in stream:
                size += len(piece)
                if size > MAX_RENDERED_CHARS:
                    raise SourceProblem(
                        "template.too-large",
                        f"the rendered output exceeds {MAX_RENDERED_CHARS // (1024 * 1024)} MiB",
                        _current_line(template, stream),
                        hint="generate fewer resources per file",
                    )
                pieces.append(piece)
        return "".join(pieces)
    except ValueProblem as problem:
        problem.line = problem.line or _template_line(problem)
        source = _variable_holding(variables, problem.text) if problem.text else None
        if source:
            problem.message += f" (the value comes from the variable '{source}')"
        raise
    except SourceProblem as problem:
        problem.line = problem.line or _template_line(problem)
        raise
    except jinja2.exceptions.SecurityError as exc:
        raise SourceProblem(
            "template.unsafe",
            f"the template tried something the sandbox forbids: {exc}",
            _template_line(exc),
            hint="templates may use variables, loops, conditions and filters only",
        ) from None
    except jinja2.UndefinedError as exc:
        message = exc.message or "undefined"
        raise SourceProblem(
            "template.undefined",
            f"template variable: {message}",
            _template_line(exc),
            hint="pass it with --var NAME=VALUE or --var-file FILE" if message.endswith("is undefined") else "",
        ) from None
    except RecursionError as exc:
        raise SourceProblem(
            "template.recursion",
            "the template nests or recurses too deeply (a macro or loop that calls itself without end?)",
            _template_line(exc),
        ) from None
    except MemoryError as exc:
        line = _template_line(exc)
        del exc  # its traceback holds the frames that hold the memory
        raise SourceProblem("template.memory", "rendering needs more memory than a template may use", line) from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise SourceProblem("template.error", f"template error: {_short(str(exc))}", _template_line(exc)) from None


def _current_line(template: jinja2.Template, stream: Any) -> int:
    """The template line a suspended render (`generate`, inside its `yield from`) is at."""
    frame = getattr(getattr(stream, "gi_yieldfrom", None), "gi_frame", None)
    return template.get_corresponding_lineno(frame.f_lineno) if frame is not None else 0


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _template_line(exc: BaseException) -> int:
    """The template line being rendered when `exc` was raised (from jinja2's traceback)."""
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _refused(value: str) -> bool:
    try:
        printed(value)
    except ValueProblem:
        return True
    return False


def _variable_holding(variables: Mapping[str, Any], text: str) -> str | None:
    """The first variable (or path inside a --var-file value) whose own text would be
    refused and is, holds or is held by `text`; at most 10,000 values are looked at."""
    pending: deque[tuple[str, Any]] = deque(variables.items())
    seen = 0
    while pending and seen < 10_000:
        name, value = pending.popleft()
        seen += 1
        if isinstance(value, str) and value and (value in text or text in value) and _refused(value):
            return name
        if isinstance(value, dict):
            pending.extend((f"{name}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{name}[{index}]", item) for index, item in enumerate(value))
    return None
