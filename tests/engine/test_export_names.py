"""`recon export` drafts name what recon manages as state records it, and take the
instructions a platform cannot hold (intent_paths) from what recon last applied."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.onboard import named_as_managed
from reconciler.providers.base import AttributeSchema, Observed, ProviderSet
from reconciler.state.model import ResourceState, State
from reconciler.testing import FakeProvider, FakeStore

SCHEMA = AttributeSchema(intent_paths=frozenset({("metadataExport",), ("encryption", "createKey")}))
LIVE = {"bucketName": "acme-eu", "metadataExport": False, "encryption": {"kmsKeyAlias": "alias/k", "createKey": False}}
APPLIED = {"bucketName": "acme-eu", "metadataExport": True, "encryption": {"kmsKeyAlias": "alias/k", "createKey": True}}


def providers() -> ProviderSet:
    return ProviderSet({"ArchiveBucket": FakeProvider("ArchiveBucket", FakeStore(), schema=SCHEMA)})


@pytest.mark.parametrize(
    ("records", "name", "attributes"),
    [
        pytest.param({}, "acme-eu", LIVE, id="unmanaged-keeps-the-platform-name-and-view"),
        pytest.param({"ArchiveBucket/archive-eu": ResourceState("ArchiveBucket", "archive-eu", "acme-eu", APPLIED)}, "archive-eu", APPLIED, id="managed-takes-state-name-and-instructions"),
        pytest.param({"ArchiveBucket/other": ResourceState("ArchiveBucket", "other", "acme-us", APPLIED)}, "acme-eu", LIVE, id="another-id-is-not-this-object"),
        pytest.param({"Queue/acme-eu": ResourceState("Queue", "acme-eu", "acme-eu", {})}, "acme-eu", LIVE, id="same-id-other-kind-is-not-this-object"),
    ],
)  # fmt: skip
def test_export_names(records: dict[str, ResourceState], name: str, attributes: dict[str, Any]) -> None:
    state = State(lineage="l", resources=records)
    found = {"ArchiveBucket": [Observed("ArchiveBucket", "acme-eu", "acme-eu", LIVE)]}
    (item,) = named_as_managed(found, state, providers())["ArchiveBucket"]
    assert (item.name, item.attributes) == (name, attributes)
    assert found["ArchiveBucket"][0].attributes == LIVE, "the input is not modified"
