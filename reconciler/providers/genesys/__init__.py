"""Genesys Cloud Platform API v2: the async httpx client recon's Genesys providers use.

`GenesysClient` (client.py) does auth (auth.py), throttling (ratelimit.py), retries and
paging (paging.py); `endpoints(region)` (regions.py) gives its base URLs; every failure is a
`GenesysError` subclass (errors.py).

Called by: the Genesys providers and the sandbox's conformance tests. Imports nothing from
recon above `reconciler.providers`.
"""

from reconciler.providers.genesys.auth import ClientCredentials, TokenSource
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.errors import (
    AuthenticationError,
    ForbiddenError,
    GenesysError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    ResponseError,
    ServerError,
    require_field,
)
from reconciler.providers.genesys.paging import MAX_PAGE_SIZE
from reconciler.providers.genesys.ratelimit import TokenBucket
from reconciler.providers.genesys.regions import REGION_DOMAINS, Endpoints, endpoints

__all__ = [
    "MAX_PAGE_SIZE",
    "REGION_DOMAINS",
    "AuthenticationError",
    "ClientCredentials",
    "Endpoints",
    "ForbiddenError",
    "GenesysClient",
    "GenesysError",
    "NotFoundError",
    "RateLimitedError",
    "RequestRejectedError",
    "ResponseError",
    "ServerError",
    "TokenBucket",
    "TokenSource",
    "endpoints",
    "require_field",
]
