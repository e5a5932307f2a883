"""Field types for where a manifest or `recon.yaml` sends recon: URLs and secret references.

- `HttpsUrl` / `WssUrl`: a URL reconciler.endpoints accepts (https/wss, or http/ws on
  loopback; never a metadata, unspecified or other non-destination address; no user info).
  Link-local addresses pass the field check and are refused by `check_link_local`, which
  the owning model calls with its `allowLinkLocal` opt-in, so the error names the URL field.
- `SecretReference` / `FileReference`: env:/file: references that also pass
  reconciler.secretrefs.reference_problem (a valid variable name; no `..`, no control
  characters in a path). Where the file may lie is checked when it is read.

Messages never repeat the value: a URL's path or query, or a mistyped reference, may hold
the very secret that must not be printed.

Called by: reconciler.manifest.project (recon.yaml targets) and
reconciler.manifest.kinds.runtime (MarketDataFeed, CollectorTopology).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from reconciler import endpoints, secretrefs
from reconciler.manifest.kinds.base import FieldError, FieldPath, FileRef, SecretRef


def _url_checker(family: endpoints.Family) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            endpoints.check(value, family, allow_link_local=True, what="the URL")
        except endpoints.EndpointRefused as refused:
            raise ValueError(str(refused)) from None
        return value

    return check


_URI_SCHEMA = WithJsonSchema({"type": "string", "format": "uri"})


HttpsUrl = Annotated[str, AfterValidator(_url_checker("http")), _URI_SCHEMA]
WssUrl = Annotated[str, AfterValidator(_url_checker("ws")), _URI_SCHEMA]


def check_link_local(url: str | None, field: FieldPath, family: endpoints.Family, *, allowed: bool) -> None:
    """FieldError at `field` when `url` is link-local and the model has not opted in."""
    if url is None or allowed:
        return
    try:
        endpoints.check(url, family, allow_link_local=False, what="the URL")
    except endpoints.EndpointRefused as refused:
        raise FieldError(field, str(refused)) from None


def _check_reference(value: str) -> str:
    problem = secretrefs.reference_problem(value)
    if problem is not None:
        raise ValueError(f"{problem}; {secretrefs.REFERENCE_HINT}")
    return value


SecretReference = Annotated[SecretRef, AfterValidator(_check_reference)]
FileReference = Annotated[FileRef, AfterValidator(_check_reference)]
