"""The Genesys Cloud ProviderSet: one client, one directory, one audit trail, four kinds.

    RecordingPolicy  → media retention policies      (reconciler.providers.genesys.policies)
    Queue            → routing queues                 (reconciler.providers.genesys.queues)
    LegalHold        → deletion protection            (reconciler.providers.genesys.holds)
    RecordingSettings → the org's recording settings  (reconciler.providers.genesys.settings)

RetentionPolicy has no object of its own on Genesys Cloud: its days are folded into every
media retention policy that uses it, so plans show them on the RecordingPolicy.

`genesys_providers` returns the providers plus the hooks the engine and CLI use: a new
plan pass drops the shared queue/user lists; `request_counter` reports HTTP requests made
(for `--verbose`); closing the set closes the client.

Called by: reconciler.cli.targets (sandbox and named targets), bench/bench_plan_genesys.py.
"""

from __future__ import annotations

import datetime as dt

from reconciler.providers.base import Provider, ProviderSet
from reconciler.providers.genesys.audit import AuditTrail
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.directory import Directory
from reconciler.providers.genesys.holds import LegalHoldProvider
from reconciler.providers.genesys.policies import RecordingPolicyProvider
from reconciler.providers.genesys.queues import QueueProvider
from reconciler.providers.genesys.settings import RecordingSettingsProvider

GENESYS_KINDS = ("Queue", "RecordingPolicy", "LegalHold", "RecordingSettings")


def genesys_providers(client: GenesysClient, *, client_id: str, today: dt.date) -> ProviderSet:
    """The providers for one org behind `client` (whose OAuth client id is `client_id`,
    used to tell recon's own audit entries from people's). `today` bounds open hold periods."""
    directory = Directory(client)
    audit = AuditTrail(client, own_client_id=client_id)
    providers: dict[str, Provider] = {
        "Queue": QueueProvider(client, directory, audit),
        "RecordingPolicy": RecordingPolicyProvider(client, directory, audit),
        "LegalHold": LegalHoldProvider(client, directory, today=today),
        "RecordingSettings": RecordingSettingsProvider(client, audit),
    }
    return ProviderSet(
        providers,
        pass_hooks=[directory.new_pass],
        request_counter=lambda: client.requests,
        request_counters={"Genesys Cloud": lambda: client.requests},
        on_close=[client.aclose],
    )
