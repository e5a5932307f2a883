"""Waiver: silence one compliance rule on one resource until a date, with a named owner.

An expired waiver silences nothing and is itself reported; so is a waiver that silences no
finding (it may hide a future one). The rule id is checked against the rule registry by the
policy layer, which names close matches.

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from reconciler.manifest.kinds.base import Reference, Spec, register_kind

ADDRESS_PATTERN = r"^[A-Z][A-Za-z]+/[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
_ADDRESS_RE = re.compile(ADDRESS_PATTERN)


def _check_address(value: str) -> str:
    if not _ADDRESS_RE.match(value):
        raise ValueError(f"'{value}' is not a resource address; write Kind/name (e.g. Queue/energy-desk-gas)")
    return value


Address = Annotated[
    str,
    AfterValidator(_check_address),
    WithJsonSchema({"type": "string", "pattern": ADDRESS_PATTERN}),
]


@register_kind("Waiver", summary="An owned, expiring exception to one compliance rule on one resource.")
class WaiverSpec(Spec):
    rule: str = Field(min_length=1)
    """The rule id to silence (e.g. recon.trader-uncovered)."""
    target: Address
    """The resource the rule is silenced on: Kind/name."""
    reason: str = Field(min_length=10)
    """Why the exception is acceptable, in words an auditor can read."""
    owner: str = Field(min_length=3)
    """Who answers for the exception."""
    expires: dt.date
    """The last day the waiver silences the rule."""

    def references(self) -> Iterable[Reference]:
        kind, _, name = self.target.partition("/")
        yield Reference(kind, name, ("target",), direction="none")
