"""One conformance walk over every registered kind and the providers of the sandbox target:
each manageable kind has a provider that satisfies the protocol, every attribute path its
schema names exists in the kind's JSON Schema (set paths are arrays), and a resource of the
kind, created and observed again, shows no diff (no perpetual diffs, kind by kind)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import EXAMPLES

from reconciler.engine.diff import canonical, changes
from reconciler.engine.planner import desired_resources
from reconciler.manifest.kinds import KINDS
from reconciler.manifest.loader import load_estate
from reconciler.providers.base import Provider
from reconciler.state.model import State
from reconciler.testing import POLICY_ONLY_KINDS, FakeStore, fake_providers

MANAGED = [kind for kind in KINDS if kind not in POLICY_ONLY_KINDS]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(option, root) for option in schema[key] if option.get("type") != "null"]
            if len(options) == 1:
                return options[0]
    return schema


def _walk(root: dict[str, Any], pattern: tuple[str, ...]) -> dict[str, Any] | None:
    node = _resolve(root, root)
    for part in pattern:
        if part == "*" and node.get("type") == "array":
            node = _resolve(node["items"], root)
        elif part in node.get("properties", {}):
            node = _resolve(node["properties"][part], root)
        else:
            return None
    return node


@pytest.mark.parametrize("kind", MANAGED)
def test_every_manageable_kind_has_a_protocol_provider(kind: str) -> None:
    provider = fake_providers(FakeStore()).get(kind)
    assert isinstance(provider, Provider)
    assert provider.kind == kind


@pytest.mark.parametrize("kind", MANAGED)
def test_schema_paths_exist_in_the_kind(kind: str) -> None:
    provider = fake_providers(FakeStore()).get(kind)
    assert provider is not None
    root = KINDS[kind].spec_model.model_json_schema(by_alias=True)
    schema = provider.schema
    for pattern in schema.set_paths | schema.ignored_paths | schema.replace_paths:
        assert _walk(root, pattern) is not None, f"{kind}: {'.'.join(pattern)} is not a field of the kind"
    for pattern in schema.set_paths:
        node = _walk(root, pattern)
        assert node is not None and node.get("type") == "array", f"{kind}: set path {'.'.join(pattern)} is not a list"


def test_waiver_is_policy_only() -> None:
    assert fake_providers(FakeStore()).get("Waiver") is None


@pytest.mark.parametrize("kind", MANAGED)
def test_created_resource_observes_without_a_diff(kind: str) -> None:
    estate = load_estate([EXAMPLES / "energy-desk-eu"]).estate
    store = FakeStore()
    providers = fake_providers(store)
    desired = [d for d in asyncio.run(desired_resources(estate, State.new(), providers)).values() if d.kind == kind]
    assert desired, f"no {kind} in the example estate"
    provider = providers.get(kind)
    assert provider is not None

    async def round_trip() -> list[tuple[str, int]]:
        found = []
        for item in desired:
            created = await provider.create(item.name, dict(item.attributes))
            observed = (await provider.observe_all([created.ref]))[item.address]
            live = canonical(provider.normalise(observed.attributes), provider.schema)
            found.append((item.address, len(changes(live, item.attributes, provider.schema))))
        return found

    assert all(count == 0 for _, count in asyncio.run(round_trip()))
