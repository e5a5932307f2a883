"""The building blocks of every kind: the strict base model, the kind registry, reusable
field types (names, secret references, regions, percentages) and the Reference type.

A kind is registered with `@register_kind("Queue", summary=...)` on its spec model. The
registry is the single list every generic piece walks: the loader (validation), the schema
writer, the docs conformance test and the reference resolver. Spec models declare their
cross-resource references by implementing `references()`.

Called by: reconciler.manifest.kinds.* (definitions), reconciler.manifest.loader, schema.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from reconciler.durations import shown
from reconciler.manifest.kinds import text
from reconciler.manifest.regions import AWS_REGION_JURISDICTION, GENESYS_REGION_JURISDICTION

API_VERSION = "recon/v1"
FieldPath = tuple[str | int, ...]


class Model(BaseModel):
    """Strict base: unknown fields are errors, values are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True, slots=True)
class Reference:
    """A by-name pointer from one resource's spec to another resource.

    `field` is the path inside `spec`. `key` is the target attribute matched ("name", or e.g.
    "bucketName" for an access-log bucket that may or may not be managed by recon).
    `required` references must resolve; optional ones become edges only when they do.
    `direction` says which side must exist first: "needs" (the target is applied first),
    "needed_by" (the source is applied first), "none" (no ordering, e.g. a waiver's target).
    """

    kind: str | None
    name: str
    field: FieldPath
    key: str = "name"
    required: bool = True
    direction: Literal["needs", "needed_by", "none"] = "needs"


class FieldError(ValueError):
    """Raised by a model validator to blame one field below the model, not the whole model.

    pydantic locates a model validator's error at the model; the error explainer adds
    `field` (a path relative to the model) so the diagnostic names the exact line.
    """

    def __init__(self, field: FieldPath, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Spec(Model):
    """Base of every kind's spec."""

    def references(self) -> Iterable[Reference]:
        """Every by-name reference this spec makes. Default: none."""
        return ()


@dataclass(frozen=True, slots=True)
class KindInfo:
    """A registered kind: its name, spec model and one-line summary."""

    name: str
    spec_model: type[Spec]
    summary: str


KINDS: dict[str, KindInfo] = {}
SpecT = TypeVar("SpecT", bound=type[Spec])


def register_kind(name: str, *, summary: str) -> Callable[[SpecT], SpecT]:
    """Class decorator: register `cls` as the spec model of kind `name`."""

    def decorate(cls: SpecT) -> SpecT:
        if name in KINDS:
            raise RuntimeError(f"kind {name} registered twice")
        KINDS[name] = KindInfo(name=name, spec_model=cls, summary=summary)
        return cls

    return decorate


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _string_schema(pattern: str, description: str, examples: list[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description, "examples": examples})


Name = text.Name
"""A resource name (DNS label style), matched whole: see reconciler.manifest.kinds.text."""

SECRET_PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$"
_SECRET_RE = re.compile(SECRET_PATTERN)


def _check_secret(value: str) -> str:
    # Never echo the value: it may be the very secret that must not be printed.
    if not _SECRET_RE.match(value):
        raise ValueError(
            "a literal secret is not allowed here; write env:NAME (read from an "
            "environment variable) or file:PATH (read from a file) instead"
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_check_secret),
    _string_schema(
        SECRET_PATTERN,
        "A reference to a secret, never the secret: env:NAME or file:PATH.",
        ["env:TRADESENSE_TOKEN_A", "file:/run/secrets/token"],
    ),
]

FILE_PATTERN = r"^file:.+$"


def _check_file(value: str) -> str:
    if not value.startswith("file:") or len(value) <= 5:
        raise ValueError(f"'{value}' is not a file reference; write file:PATH (e.g. file:certs/ca.pem)")
    return value


FileRef = Annotated[
    str,
    AfterValidator(_check_file),
    _string_schema(FILE_PATTERN, "A file reference: file:PATH.", ["file:certs/ca.pem"]),
]


def _check_aws_region(value: str) -> str:
    if value not in AWS_REGION_JURISDICTION:
        raise ValueError(f"'{value}' is not an AWS region{suggest(value, AWS_REGION_JURISDICTION)}")
    return value


AwsRegion = Annotated[
    str,
    AfterValidator(_check_aws_region),
    _string_schema(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]$", "An AWS region.", ["eu-west-1"]),
]


def _check_genesys_region(value: str) -> str:
    if value not in GENESYS_REGION_JURISDICTION:
        known = ", ".join(sorted(GENESYS_REGION_JURISDICTION))
        raise ValueError(
            f"'{value}' is not a Genesys Cloud region{suggest(value, GENESYS_REGION_JURISDICTION)}; "
            f"known regions: {known}"
        )
    return value


GenesysRegion = Annotated[
    str,
    AfterValidator(_check_genesys_region),
    _string_schema(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", "A Genesys Cloud region.", ["eu-west-1"]),
]


_PERCENT = re.compile(r"(?P<number>(?:0|[1-9][0-9]{0,2})(?:\.[0-9]{1,6})?)%")


def _parse_percent(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a percentage, got a boolean; write e.g. 99.9%")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("expected a percentage, got a number that is not finite; write e.g. 99.9%")
        if 0 < value <= 1:
            raise ValueError(f"{value} is ambiguous: a fraction or a percentage? write it with a % sign (e.g. 99.9%)")
        return float(value)
    if isinstance(value, str):
        match = _PERCENT.fullmatch(value)
        if match is None:
            raise ValueError(
                f"{shown(value)} is not a percentage; write a number from 0 to 100 and a % sign (e.g. 99.9%)"
            )
        return float(match["number"])
    raise ValueError(f"expected a percentage, got {type(value).__name__}; write e.g. 99.9%")


Percent = Annotated[
    float,
    BeforeValidator(_parse_percent),
    Field(ge=0, le=100),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^[0-9]{1,3}(\.[0-9]{1,6})?%$", "examples": ["99.9%"]}),
]

URL_PATTERN = r"^(https?|wss?)://[^\s/]+(/\S*)?$"
_URL_RE = re.compile(URL_PATTERN)


def _url_checker(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if not _URL_RE.match(value) or scheme not in schemes:
            allowed = " or ".join(f"{s}://" for s in schemes)
            raise ValueError(f"'{value}' is not a valid URL here; write an {allowed} URL")
        return value

    return check


_URI_SCHEMA = WithJsonSchema({"type": "string", "format": "uri"})
HttpUrl = Annotated[str, AfterValidator(_url_checker(("https", "http"))), _URI_SCHEMA]
WebSocketUrl = Annotated[str, AfterValidator(_url_checker(("wss", "ws"))), _URI_SCHEMA]
