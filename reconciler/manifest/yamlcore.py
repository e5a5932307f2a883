"""The YAML 1.2 core schema on libyaml, with numbers bounded: what a scalar's text means.

`CoreSchemaLoader` is libyaml's parser with the core schema's resolution of booleans,
integers and floats (`NO`, `on`, `yes` stay strings; `012` is twelve; `1:30` and `=` are
strings),
and constructors that refuse, with `OutOfRange`, integers outside 64 bits (the digits are
counted before they are converted, so a 4,000-digit number costs nothing) and floats that
are not finite (`.inf`, `.nan`, and `1e400`, which Python reads as infinity). A number
that large is never what a manifest means, and refusing it here, with its line, keeps it
out of every later computation (durations, dates, sizes).

Called by: reconciler.manifest.yamlsafe.
"""

from __future__ import annotations

import math
import re

import yaml
from yaml.nodes import ScalarNode

CORE = "tag:yaml.org,2002:"
_INT64 = 2**63 - 1


class CoreSchemaLoader(yaml.CSafeLoader):
    """libyaml parser with YAML 1.2 core-schema resolution for bool, int and float."""


def _install_core_schema() -> None:
    # bool, int and float are replaced below; PyYAML's `=` (!!value) and `!`, `&`, `*`
    # (!!yaml) resolvers are not YAML 1.2 and would make `=` a tag error: they are dropped.
    replaced = {f"{CORE}bool", f"{CORE}int", f"{CORE}float", f"{CORE}value", f"{CORE}yaml"}
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.resolver.Resolver.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if tag not in replaced]
        if kept:
            resolvers[first] = kept
    CoreSchemaLoader.yaml_implicit_resolvers = resolvers
    core = [
        (f"{CORE}bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        (f"{CORE}int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        (
            f"{CORE}float",
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            "-+0123456789.",
        ),
    ]
    for tag, pattern, first_chars in core:
        CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern), list(first_chars))


class OutOfRange(ValueError):
    """A number the text spells out but recon will not hold (the message never quotes it)."""


def _construct_core_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
    """YAML 1.2 integers: `012` is twelve, not octal ten. At most 64 bits: the digits are
    counted before they are converted, so a 4,000-digit number costs nothing."""
    text = str(loader.construct_scalar(node))
    if len(text) > 30:
        raise OutOfRange(f"a {len(text):,}-character number is outside the 64-bit range")
    if text.startswith("0o"):
        value = int(text[2:], 8)
    elif text.startswith("0x"):
        value = int(text[2:], 16)
    else:
        value = int(text, 10)
    if not -_INT64 - 1 <= value <= _INT64:
        raise OutOfRange(
            "the number is outside the 64-bit range (-9,223,372,036,854,775,808 to 9,223,372,036,854,775,807)"
        )
    return value


def _construct_finite_float(loader: yaml.SafeLoader, node: ScalarNode) -> float:
    """Floats are finite: `.inf`, `.nan` and `1e400` (which Python reads as infinity) are errors."""
    value = yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)
    if not math.isfinite(value):
        raise OutOfRange("the number is not finite (infinite, not a number, or too large for a float)")
    return float(value)


_install_core_schema()
CoreSchemaLoader.add_constructor(f"{CORE}int", _construct_core_int)
CoreSchemaLoader.add_constructor(f"{CORE}float", _construct_finite_float)
