"""Catch secrets pasted into any manifest field, not only the fields typed as secrets.

Secret fields (`token`, `clientKey`, ...) already refuse anything but env:/file: references.
This scan covers the rest: a private key block, an AWS access key id, a Slack or GitHub
token, or a JWT typed into a description, an annotation or a label is an error too. The
matched value is never repeated in the message.

Called by: reconciler.manifest.loader, for every document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from reconciler.manifest.yamlsafe import Path

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}")),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}"),
    ),
)


def find_secrets(data: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, what it looks like) for every string value that looks like a secret."""
    if isinstance(data, str):
        if len(data) >= 16:
            for what, pattern in _PATTERNS:
                if pattern.search(data):
                    yield path, what
                    return
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from find_secrets(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from find_secrets(value, (*path, index))
