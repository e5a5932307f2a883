"""Catch secrets pasted into any manifest field, not only the fields typed as secrets.

Secret fields (`token`, `clientKey`, ...) already refuse anything but env:/file: references.
This scan covers the rest: a private key block, an AWS access key id, a Slack, GitHub,
Google or Stripe key, a Slack webhook URL or a JWT typed into a description, an annotation
or a label is an error too. The matched value is never repeated in the message.

`unsafe_to_echo` is wider and only decides what messages may repeat: anything the scan
would refuse, a long random-looking token, or a value containing a secret recon holds
(reconciler.redact) is never quoted back (`redact` puts a placeholder in its place).

Called by: reconciler.manifest.loader, for every document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from reconciler import redact as redact_module
from reconciler.manifest.yamlsafe import Path

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}")),
    (
        "a JSON Web Token",
        # A token starts where a run of its characters starts (not merely at a word
        # boundary, which "-" makes inside one run): otherwise "eyJ-" repeated made the
        # search quadratic, 28 s for 160 KB of manifest.
        re.compile(r"(?<![0-9A-Za-z_-])eyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}"),
    ),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[0-9A-Za-z]+/B[0-9A-Za-z]+/[0-9A-Za-z]{8,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Stripe secret key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}")),
)


_ANY = re.compile("|".join(f"(?:{pattern.pattern})" for _, pattern in _PATTERNS))


def looks_like_secret(text: str) -> str | None:
    """What `text` looks like ("an AWS access key id", ...) if it looks like a secret, else None."""
    if len(text) < 16 or _ANY.search(text) is None:
        return None
    return next(what for what, pattern in _PATTERNS if pattern.search(text))


REDACTED = "<redacted>"
_TOKEN_LIKE = re.compile(r"[^\s]{20,}")


def _random_looking(text: str) -> bool:
    """A long run without spaces that mixes letters, digits and symbols like a generated
    token does (ordinary words, names, paths and dates do not)."""
    if not _TOKEN_LIKE.fullmatch(text):
        return False
    lower, upper, digits = (sum(test(c) for c in text) for test in (str.islower, str.isupper, str.isdigit))
    if min(lower, upper, digits) < 2:  # e.g. clientCertificateFile2 is a name, not a token
        return False
    counts = {c: text.count(c) for c in set(text)}
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 3.5


def unsafe_to_echo(text: str) -> bool:
    """Whether an error message must not repeat `text`: it looks like a secret (a pattern
    above, or a long random-looking token), or it contains a secret recon holds."""
    return bool(looks_like_secret(text)) or _random_looking(text) or redact_module.holds(text)


def redact(text: str) -> str:
    """`text`, or a placeholder when it must not be echoed (for keys and values in messages)."""
    return REDACTED if unsafe_to_echo(text) else text


# Literal fragments that every pattern above needs; substring search runs at memory speed,
# a regex alternation over megabytes of manifests does not.
_MARKERS = ("PRIVATE KEY-----", "AKIA", "ASIA", "xox", "gh", "eyJ", "hooks.slack.com", "AIza", "k_live_")


def may_contain_secrets(text: str) -> bool:
    """A fast pass over a file's text; False means find_secrets would find nothing."""
    return any(marker in text for marker in _MARKERS) and _ANY.search(text) is not None


def find_secrets(data: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, what it looks like) for every string value, or map key, that looks like a secret."""
    if isinstance(data, str):
        what = looks_like_secret(data)
        if what:
            yield path, what
    elif isinstance(data, dict):
        for key, value in data.items():
            key_what = looks_like_secret(str(key))
            if key_what:
                yield (*path, key), key_what
                continue
            yield from find_secrets(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from find_secrets(value, (*path, index))
