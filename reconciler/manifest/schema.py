"""JSON Schemas for editors and CI, generated from the kind models (one source of truth).

`schema_files()` returns {file name: JSON text} for every registered kind, the project file
and one combined `manifest.schema.json` that dispatches on `kind`. `recon schema` writes
them into `schemas/`; `recon schema --check` fails when the checked-in files are stale.

Called by: the CLI (`recon schema`) and the kind conformance test.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.manifest.kinds import API_VERSION, KINDS
from reconciler.manifest.model import document_model
from reconciler.manifest.project import Project

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def kind_schema(kind: str) -> dict[str, Any]:
    schema = document_model(kind).model_json_schema(by_alias=True, mode="validation")
    schema["title"] = f"recon {API_VERSION} {kind}"
    schema["description"] = KINDS[kind].summary
    return {"$schema": DIALECT, **schema}


def schema_files() -> dict[str, str]:
    files = {f"{kind}.schema.json": _dump(kind_schema(kind)) for kind in sorted(KINDS)}
    project = Project.model_json_schema(by_alias=True, mode="validation")
    project["title"] = "recon project file (recon.yaml)"
    files["project.schema.json"] = _dump({"$schema": DIALECT, **project})
    combined = {
        "$schema": DIALECT,
        "title": f"recon {API_VERSION} manifest (any kind)",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"kind": {"enum": sorted(KINDS)}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}},
                "then": {"$ref": f"{kind}.schema.json"},
            }
            for kind in sorted(KINDS)
        ],
    }
    files["manifest.schema.json"] = _dump(combined)
    return files
