"""Genesys Cloud regions: which login and API hosts serve an org.

Maps an AWS-style region name (the one shown in the Genesys Cloud admin UI) to the
platform's domain, and builds the two base URLs the client needs: the OAuth login host
(`https://login.{domain}`) and the Platform API host (`https://api.{domain}`). Explicit base
URLs are supported too, for the local sandbox on loopback and for tests.

Called by: the Genesys client (`reconciler.providers.genesys.client`) and whoever builds one
from a target's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.providers.base import ProviderError

REGION_DOMAINS: dict[str, str] = {
    "us-east-1": "mypurecloud.com",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "ap-southeast-2": "mypurecloud.com.au",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-south-1": "aps1.pure.cloud",
    "ap-northeast-2": "apne2.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
}
"""Region name → Genesys Cloud domain."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The two base URLs of one Genesys Cloud org (no trailing slash)."""

    login_base: str
    api_base: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "login_base", self.login_base.rstrip("/"))
        object.__setattr__(self, "api_base", self.api_base.rstrip("/"))


def endpoints(region: str) -> Endpoints:
    """The login and API base URLs for `region` (e.g. "eu-west-1").

    Raises ProviderError naming the known regions when `region` is not one of them.
    """
    domain = REGION_DOMAINS.get(region.strip().lower())
    if domain is None:
        known = ", ".join(sorted(REGION_DOMAINS))
        raise ProviderError(
            f"unknown Genesys Cloud region {region!r}",
            next_step=f"use one of: {known}; or give explicit login and API base URLs",
        )
    return Endpoints(login_base=f"https://login.{domain}", api_base=f"https://api.{domain}")
