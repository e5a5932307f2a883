"""Turn pydantic validation errors into Diagnostics a compliance engineer can act on.

Each pydantic error becomes one Diagnostic at the line and column of the offending value (or
of the key, for unknown fields), with the dotted field path, a plain-words message and a
hint: the allowed values, the close match for a misspelt field, the fields allowed here.
Input values are never copied into messages by this module, and a value a validator quotes
is replaced by a placeholder when it looks like a secret or contains one recon holds, so a
secret typed into the wrong field cannot leak through an error.

Called by: reconciler.manifest.loader and reconciler.manifest.project.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
import unicodedata
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.diagnostics import Diagnostic, Location
from reconciler.manifest.kinds.base import FieldError, suggest
from reconciler.manifest.secrets_scan import REDACTED, redact, unsafe_to_echo
from reconciler.manifest.source import SourceProblem
from reconciler.manifest.yamlsafe import ParsedDocument, Path, YamlProblem
from reconciler.redact import scrub

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a map (key: value lines)",
    "model_type": "a map (key: value lines)",
    "model_attributes_type": "a map (key: value lines)",
    "list_type": "a list",
    "date_type": "a date like 2026-07-01",
    "date_parsing": "a date like 2026-07-01",
    "date_from_datetime_parsing": "a date like 2026-07-01",
    "date_from_datetime_inexact": "a date like 2026-07-01 (no time of day)",
}


def located(problem: SourceProblem | YamlProblem, file: str) -> Diagnostic:
    """The Diagnostic of a problem found while reading `file`, with the field when the YAML
    reader knows where the value sits (a number out of range)."""
    found = problem.diagnostic(file)
    path = problem.path if isinstance(problem, YamlProblem) else ()
    return replace(found, field=field_path(path)) if path else found


def field_path(loc: Path) -> str:
    """('spec', 'collectors', 0, 'token') -> 'spec.collectors[0].token'.

    Map keys are the user's text: control, invisible and bidirectional characters in them
    are shown escaped (`desk\u202e`), so the path reads as what the file holds."""
    text = ""
    for part in loc:
        shown = part if isinstance(part, int) else _escaped(redact(str(part)))
        text += f"[{shown}]" if isinstance(shown, int) else (f".{shown}" if text else shown)
    return text


def _escaped(part: str) -> str:
    if part.isprintable() and not any(unicodedata.category(c) == "Cf" for c in part):
        return part
    return "".join(c if c.isprintable() and unicodedata.category(c) != "Cf" else ascii(c)[1:-1] for c in part)


def describe_value(value: Any) -> str:
    """What kind of YAML value the user wrote, without repeating it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.datetime):
        return "a date and time"
    if isinstance(value, dt.date):
        return "a date"
    return type(value).__name__


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated wrappers down to the type that holds fields or items."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: Path) -> type[BaseModel] | None:
    """The model class that `loc` (a path of fields and indexes) points into."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            current = field.annotation
        else:
            origin = typing.get_origin(current)
            args = typing.get_args(current)
            if origin is list and args:
                current = args[0]
            elif origin is dict and len(args) == 2:
                current = args[1]
            else:
                return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def allowed_fields(model: type[BaseModel], loc: Path) -> list[str]:
    owner = _model_at(model, loc)
    if owner is None:
        return []
    return [f.alias or n for n, f in owner.model_fields.items()]


def explain_error(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    """(message, hint) for one pydantic error, never repeating a value that looks like a
    secret or contains one recon holds (validators may quote the value they refuse)."""
    message, hint = _explain(error, model)
    got = error.get("input")
    if isinstance(got, str) and got and unsafe_to_echo(got):
        message, hint = message.replace(got, REDACTED), hint.replace(got, REDACTED)
    return scrub(message), scrub(hint)


def _explain(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    kind = error["type"]
    loc: Path = tuple(error["loc"])
    last = redact(str(loc[-1])) if loc else ""
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"required field '{last}' is missing", f"add '{last}:' here"
    if kind == "extra_forbidden":
        fields = allowed_fields(model, loc[:-1])
        hint = f"allowed here: {', '.join(fields)}" if fields else "remove it"
        return f"unknown field '{last}'{suggest(last, fields)}", hint
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        got = error.get("input")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        safe = isinstance(got, str) and len(got) <= 64 and not unsafe_to_echo(got)
        shown = f"'{got}'" if safe else describe_value(got)
        hint_more = suggest(got, choices) if safe and isinstance(got, str) else ""
        return f"{shown} is not allowed here{hint_more}", f"write one of: {expected}"
    if kind == "value_error" and isinstance(ctx.get("error"), FieldError):
        return ctx["error"].message, ""
    if kind in ("value_error", "assertion_error"):
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return message, ""
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        words = {
            "less_than_equal": "at most",
            "greater_than_equal": "at least",
            "less_than": "below",
            "greater_than": "above",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return f"must be {words} {bound}", f"write a value {words} {bound}"
    if kind in ("too_short", "too_long"):
        return str(error["msg"]).replace("Value should", "needs").replace("List should", "the list needs"), ""
    if kind in _TYPE_WORDS:
        got = describe_value(error.get("input"))
        hint = ""
        if kind == "string_type" and isinstance(error.get("input"), bool | int | float):
            hint = "put the value in quotes to keep it as text"
        return f"expected {_TYPE_WORDS[kind]}, got {got}", hint
    return str(error["msg"]), ""


def diagnostics_from(
    exc: ValidationError,
    model: type[BaseModel],
    document: ParsedDocument,
    file: str,
    *,
    resource: str = "",
    loc_prefix: Path = (),
) -> list[Diagnostic]:
    """One Diagnostic per pydantic error, located in `document` (paths offset by loc_prefix)."""
    result: list[Diagnostic] = []
    for error in exc.errors(include_url=False):
        loc: Path = tuple(error["loc"])
        blamed = (error.get("ctx") or {}).get("error")
        if isinstance(blamed, FieldError):
            loc = (*loc, *blamed.field)
        message, hint = explain_error(error, model)
        full = (*loc_prefix, *loc)
        line, column = document.position(full, prefer_key=error["type"] in ("extra_forbidden", "missing"))
        result.append(
            Diagnostic(
                code=f"schema.{error['type']}",
                message=message,
                location=Location(file, line, column),
                field=field_path(full),
                hint=hint,
                resource=resource,
            )
        )
    return result
