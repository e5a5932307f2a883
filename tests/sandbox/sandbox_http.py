"""Plain-HTTP helpers shared by the sandbox server tests: log in with the sandbox's test
credentials and talk to it over loopback (no SDK, no recon client: the wire itself)."""

from __future__ import annotations

import base64
import functools
import ssl

import httpx

# Plain-HTTP loopback: one shared TLS context spares httpx loading the CA bundle per client.
TLS = ssl.create_default_context()
post = functools.partial(httpx.post, verify=TLS)
get = functools.partial(httpx.get, verify=TLS)
put = functools.partial(httpx.put, verify=TLS)

POLICIES = "/api/v2/recording/mediaretentionpolicies"
QUEUES = "/api/v2/routing/queues"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def login(base_url: str, client_id: str = "recon-sandbox", secret: str = "sandbox-secret") -> httpx.Client:
    """An httpx client carrying a bearer token issued by the sandbox at `base_url`."""
    token = post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, secret)},
    ).json()["access_token"]
    return httpx.Client(base_url=base_url, verify=TLS, headers={"Authorization": f"Bearer {token}"})
