"""Test doubles that ship with recon: a fake live platform and fake providers.

`FakeStore` is the platform (in memory, or a JSON file shared by separate processes);
`FakeProvider` implements the Provider protocol against it; `fake_providers` builds the
ProviderSet of every manageable kind; `FaultPlan` fails calls or simulates a crash
(`SimulatedCrash`) after any number of mutating calls.

Used by the engine tests, the engine benchmark and, until real sandbox servers exist, the
CLI's sandbox target. Imports reconciler.providers, reconciler.manifest (the kind
registry), reconciler.durations and reconciler.errors only.
"""

from reconciler.testing.fake import (
    POLICY_ONLY_KINDS,
    FakeProvider,
    deep_copy_normaliser,
    fake_providers,
    manageable_kinds,
)
from reconciler.testing.faults import Fault, FaultPlan, SimulatedCrash
from reconciler.testing.rules import FAKE_SCHEMAS, Classifier, default_classifier, fixed_classifier
from reconciler.testing.store import FakeStore, FakeStoreError, StoredObject

__all__ = [
    "FAKE_SCHEMAS",
    "POLICY_ONLY_KINDS",
    "Classifier",
    "FakeProvider",
    "FakeStore",
    "FakeStoreError",
    "Fault",
    "FaultPlan",
    "SimulatedCrash",
    "StoredObject",
    "deep_copy_normaliser",
    "default_classifier",
    "fake_providers",
    "fixed_classifier",
    "manageable_kinds",
]
