"""Directory: the org's queues and users, read once per plan pass and shared by providers.

Several Genesys mappings need the same lookups: a media retention policy names queues by
id (recon names them by name), a legal hold's scope names users by e-mail and queues by
name. Reading them once per pass (one paged list call per collection) and sharing the
result is what keeps a plan at "one list pass per collection". The queue provider's own
observe uses the same list, so queues are listed once per plan, not twice.

A pass starts when the engine calls `ProviderSet.new_pass()` (start of every plan and
drift); the cached lists are then dropped, so a re-plan under the lock reads the platform
again. Within a pass, creates, renames and deletes of queues made by apply update the
cache, so a policy created after its queues finds their ids without another list.
Concurrent callers share one in-flight load.

Called by: the Genesys queue, recording-policy and legal-hold providers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from reconciler.providers.genesys.client import GenesysClient

QUEUES_PATH = "/api/v2/routing/queues"
USERS_PATH = "/api/v2/users"

JsonObject = dict[str, Any]


class _Cached:
    """One collection, loaded at most once per pass; concurrent callers share the load."""

    def __init__(self, load: Callable[[], Awaitable[list[JsonObject]]]) -> None:
        self._load = load
        self._task: asyncio.Task[list[JsonObject]] | None = None
        self.items: dict[str, JsonObject] | None = None

    def reset(self) -> None:
        self._task = None
        self.items = None

    async def get(self) -> dict[str, JsonObject]:
        if self.items is not None:
            return self.items
        if self._task is None:
            self._task = asyncio.ensure_future(self._load())
        task = self._task
        try:
            loaded = await asyncio.shield(task)
        except BaseException:
            if self._task is task:
                self._task = None
            raise
        if self.items is None:
            self.items = {str(item["id"]): item for item in loaded if isinstance(item, dict) and "id" in item}
        return self.items


class Directory:
    """Queues and users of one org, by id, cached for the current pass."""

    def __init__(self, client: GenesysClient) -> None:
        self.client = client
        self._queues = _Cached(lambda: self._list(QUEUES_PATH))
        self._users = _Cached(lambda: self._list(USERS_PATH))

    async def _list(self, path: str) -> list[JsonObject]:
        return [item async for item in self.client.paginate(path)]

    def new_pass(self) -> None:
        """Forget what was read: the next lookup lists the platform again."""
        self._queues.reset()
        self._users.reset()

    async def queues(self) -> dict[str, JsonObject]:
        """Every routing queue, by id (one paged list per pass)."""
        return await self._queues.get()

    async def queue_ids(self) -> dict[str, str]:
        """Queue id by queue name."""
        return {str(q.get("name")): qid for qid, q in (await self.queues()).items()}

    async def queue_names(self) -> dict[str, str]:
        """Queue name by queue id."""
        return {qid: str(q.get("name")) for qid, q in (await self.queues()).items()}

    async def user_ids(self) -> dict[str, str]:
        """User id by e-mail (lower case), from one paged list of users per pass."""
        users = await self._users.get()
        found: dict[str, str] = {}
        for user_id, user in users.items():
            for key in ("email", "username"):
                value = user.get(key)
                if isinstance(value, str) and value:
                    found.setdefault(value.lower(), user_id)
        return found

    def remember_queue(self, queue: JsonObject) -> None:
        """A queue apply created or changed: keep the cache true without listing again."""
        if self._queues.items is not None and "id" in queue:
            self._queues.items[str(queue["id"])] = queue

    def forget_queue(self, queue_id: str) -> None:
        """A queue apply deleted."""
        if self._queues.items is not None:
            self._queues.items.pop(queue_id, None)
