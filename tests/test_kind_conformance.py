"""One walk over the kind registry: every registered kind has a checked-in, current JSON
Schema, appears in an example estate, and has a docs page that names every spec field.
A new kind that forgets any of these fails here."""

from __future__ import annotations

import json
import re

import pytest
from conftest import EXAMPLES, REPO

from reconciler.manifest.kinds import KINDS
from reconciler.manifest.loader import load_estate
from reconciler.manifest.schema import schema_files


@pytest.fixture(scope="module")
def example_kinds() -> set[str]:
    kinds: set[str] = set()
    for estate in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        kinds |= {r.kind for r in load_estate([estate]).estate.resources.values()}
    return kinds


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_has_current_schema(kind: str) -> None:
    checked_in = REPO / "schemas" / f"{kind}.schema.json"
    assert checked_in.read_text() == schema_files()[f"{kind}.schema.json"], "run `recon schema`"
    schema = json.loads(checked_in.read_text())
    assert schema["properties"]["kind"]["const"] == kind
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_appears_in_an_example_estate(kind: str, example_kinds: set[str]) -> None:
    assert kind in example_kinds


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_docs_name_every_spec_field(kind: str) -> None:
    page = (REPO / "docs" / "kinds" / f"{kind}.md").read_text()
    fields = [field.alias or name for name, field in KINDS[kind].spec_model.model_fields.items()]
    missing = [f for f in fields if not re.search(rf"`{re.escape(f)}[`.]", page)]
    assert not missing, f"docs/kinds/{kind}.md does not mention {missing}"


def test_docs_index_lists_every_kind() -> None:
    index = (REPO / "docs" / "kinds" / "README.md").read_text()
    assert all(kind in index for kind in KINDS)
