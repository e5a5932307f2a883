"""Waiver: silence one compliance rule on one resource until a date, with a named owner.

An expired waiver silences nothing and is itself reported; so is a waiver that silences no
finding (it may hide a future one). The rule id is checked against the rule registry by the
policy layer, which names close matches.

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from reconciler.dates import DayField
from reconciler.manifest.kinds import text
from reconciler.manifest.kinds.base import Reference, Spec, register_kind
from reconciler.manifest.kinds.text import Line, Prose

Address = text.Address
RULE_PATTERN = r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$"
RuleId = Annotated[
    str,
    AfterValidator(text.identifier_check(RULE_PATTERN[1:-1], "a rule id", "write a rule id as `recon rules` lists it")),
    WithJsonSchema({"type": "string", "pattern": RULE_PATTERN}),
]


@register_kind("Waiver", summary="An owned, expiring exception to one compliance rule on one resource.")
class WaiverSpec(Spec):
    rule: RuleId
    """The rule id to silence (e.g. recon.trader-uncovered)."""
    target: Address
    """The resource the rule is silenced on: Kind/name."""
    reason: Prose = Field(min_length=10)
    """Why the exception is acceptable, in words an auditor can read."""
    owner: Line = Field(min_length=3)
    """Who answers for the exception."""
    expires: DayField
    """The last day the waiver silences the rule."""

    def references(self) -> Iterable[Reference]:
        kind, _, name = self.target.partition("/")
        yield Reference(kind, name, ("target",), direction="none")
