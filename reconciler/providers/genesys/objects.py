"""The read and write steps every Genesys object provider shares: find an object by exact
name (for idempotent create), read one for a read-modify-write (a 404 says "deleted outside
recon, plan again"), delete one tolerating "already gone", and refuse a ref with no id.

Called by: the queue and recording-policy providers.
"""

from __future__ import annotations

import contextlib
from typing import Any

from reconciler.providers.base import ProviderError, ResourceRef
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.errors import NotFoundError


def require_id(ref: ResourceRef, verb: str) -> str:
    """`ref.id`, or ProviderError: the engine never asks to change an object it has no id for."""
    if ref.id is None:
        raise ProviderError(f"cannot {verb} {ref.address}: no platform id", next_step="this is a bug in the caller")
    return ref.id


async def find_by_name(client: GenesysClient, collection: str, name: str) -> dict[str, Any] | None:
    """The object in `collection` named exactly `name` (the API's name filter may match more)."""
    async for item in client.paginate(collection, {"name": name}):
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


async def read_for_update(
    client: GenesysClient, collection: str, ref: ResourceRef, what: str
) -> tuple[str, dict[str, Any]]:
    """(id, the object) from GET `collection/{id}`; ProviderError naming `what` when it is gone."""
    object_id = require_id(ref, "update")
    try:
        current: dict[str, Any] = await client.get(f"{collection}/{object_id}")
    except NotFoundError as exc:
        raise ProviderError(
            f"cannot update {ref.address}: Genesys Cloud has no {what} {object_id}",
            next_step="run `recon plan` again; it was deleted outside recon and will be created again",
        ) from exc
    return object_id, current


async def delete_if_present(client: GenesysClient, collection: str, ref: ResourceRef) -> str:
    """DELETE `collection/{id}`; already gone is success. Returns the id."""
    object_id = require_id(ref, "delete")
    with contextlib.suppress(NotFoundError):
        await client.delete(f"{collection}/{object_id}")
    return object_id
