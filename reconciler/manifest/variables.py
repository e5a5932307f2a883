"""Template variables from `--var KEY=VALUE` and `--var-file FILE` (YAML or JSON map).

Files are read with the same hardened reader as manifests (regular files only, at most
10 MiB, read without blocking: `--var-file /dev/zero` or a named pipe is an error, not a
hang) and the same YAML reader. `--var` wins over files, later files win over earlier ones.
Values from `--var` are strings.

Names are letters, digits and `_`, not starting with a digit, matched in full (`x\\n` is not
`x`). Values are data: whatever they hold, printing one in a template cannot add a line, a
key or a document (reconciler.manifest.templating checks every printed value); a value that
needs to hold such characters is printed with `| tojson`. A `--var` value that is not valid
UTF-8 (the shell passed raw bytes) is refused here.

Called by: the CLI before loading manifests.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic, Location
from reconciler.errors import InputError, UsageError
from reconciler.manifest.explain import located
from reconciler.manifest.source import SourceProblem, display_path, read_text
from reconciler.manifest.yamlsafe import YamlProblem, parse_documents

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_RULE = "a letter or _ then letters, digits or _"


def _is_name(key: str) -> bool:
    return _NAME.fullmatch(key) is not None and not keyword.iskeyword(key)


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """`["env=prod", "desk=gas"]` -> `{"env": "prod", "desk": "gas"}`."""
    result: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not _is_name(key):
            shown = key[:40].encode("ascii", "backslashreplace").decode("ascii")
            raise UsageError(
                f"--var '{shown}...' is not KEY=VALUE",
                next_step=f"write --var NAME=VALUE, with NAME {_NAME_RULE}",
            )
        if _has_surrogates(value):
            raise UsageError(
                f"--var {key}: the value is not valid UTF-8",
                next_step="pass the value as UTF-8 text",
            )
        result[key] = value
    return result


def load_var_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Merge the maps in `paths`, later files overriding earlier ones."""
    result: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        shown = display_path(path)
        try:
            documents = parse_documents(read_text(path))
        except (SourceProblem, YamlProblem) as exc:
            problems.append(located(exc, shown))
            continue
        for document in documents:
            if not isinstance(document.data, dict):
                problems.append(
                    Diagnostic(
                        "vars.shape",
                        "a variables file must be a map of NAME: value",
                        Location(shown, document.line, 1),
                    )
                )
                continue
            for key in document.data:
                if not _is_name(key):
                    line, column = document.position((key,), prefer_key=True)
                    problems.append(
                        Diagnostic(
                            "vars.name",
                            "this key is not a variable name a template can use",
                            Location(shown, line, column),
                            hint=f"name variables with {_NAME_RULE}",
                        )
                    )
            result.update(document.data)
    if problems:
        raise InputError(problems)
    return result
