"""Template variables from `--var KEY=VALUE` and `--var-file FILE` (YAML or JSON map).

Files are read with the same hardened YAML reader as manifests. `--var` wins over files,
later files win over earlier ones. Values from `--var` are strings.

Called by: the CLI before loading manifests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.diagnostics import Diagnostic, Location
from reconciler.errors import InputError, UsageError
from reconciler.manifest.source import SourceProblem, display_path, read_text
from reconciler.manifest.yamlsafe import YamlProblem, parse_documents

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """`["env=prod", "desk=gas"]` -> `{"env": "prod", "desk": "gas"}`."""
    result: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not _NAME.match(key):
            raise UsageError(
                f"--var '{item.split('=', 1)[0]}...' is not KEY=VALUE",
                next_step="write --var NAME=VALUE, with NAME a letter or _ then letters, digits or _",
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
        except FileNotFoundError:
            problems.append(Diagnostic("file.missing", "no such variables file", Location(shown)))
            continue
        except (SourceProblem, YamlProblem) as exc:
            problems.append(exc.diagnostic(shown))
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
            result.update(document.data)
    if problems:
        raise InputError(problems)
    return result
