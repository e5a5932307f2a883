"""LegalHold ↔ deletion protection of the conversations in the hold's scope.

Genesys Cloud has no hold object: a hold is the set of conversations recon protected from
deletion (`PUT /api/v2/recordings/deletionprotection?protect=true`, at most 100 ids per
call). Attributes in plans are the hold's manifest fields (matter, scope, autoExtend,
release) plus `conversations`, the set of protected conversation ids.

Scope (decided here, documented in the README): a hold covers every conversation that
started in its period (`from` .. `to`, whole days, UTC; open ends are unbounded) and that
involved a listed user, OR was on a listed queue, OR whose transcript contains a listed
search term. With only a period, every conversation in it. Over-holding is safe; missing a
conversation is not. The conversations come from the analytics details query (users,
queues) and the transcript search (terms), read in `expand` at plan time. With
`autoExtend`, every plan recomputes the set, so conversations that enter the scope later
are added; without it, the set recon applied is kept while the scope is unchanged. A
release (approved, see hold_safety) empties the set.

Observe: the platform only says whether a conversation is protected (`POST
.../deletionprotection` with ids, ≤ 100 per call). The live hold is therefore the
protected subset of the conversations recon applied plus those the manifests now want;
its manifest fields are what recon applied last (the platform cannot hold them).

Overlapping holds: a conversation another declared hold still covers is never
unprotected. The org-wide limit (ORG_PROTECTION_LIMIT, documented by Genesys as 1000
protected conversations) is checked at plan time: a change that would take the union of
all holds over it is forbidden before apply, naming the count.

Called by: reconciler.providers.genesys.provider (the Genesys ProviderSet).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.providers.base import (
    Action,
    Attributes,
    AttributeSchema,
    Attribution,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    ProviderError,
    ResourceRef,
    Safety,
    strongest,
)
from reconciler.providers.genesys.client import GenesysClient
from reconciler.providers.genesys.directory import Directory
from reconciler.providers.hold_safety import hold_rules, missing_release_fields

PROTECTION_PATH = "/api/v2/recordings/deletionprotection"
DETAILS_PATH = "/api/v2/analytics/conversations/details/query"
TRANSCRIPTS_PATH = "/api/v2/speechandtextanalytics/transcripts/search"
BATCH = 100
"""Conversation ids per deletion-protection call (the API's limit)."""
ORG_PROTECTION_LIMIT = 1000
"""Protected conversations per org, as documented by Genesys."""
DETAILS_PAGE = 100
SEARCH_PAGE = 100
EPOCH = dt.date(2000, 1, 1)
MAX_PAGES = 10_000

HOLD_SCHEMA = AttributeSchema(
    set_paths=frozenset({("scope", "users"), ("scope", "queues"), ("scope", "searchTerms"), ("conversations",)}),
    exportable=False,
)


def hold_id(name: str) -> str:
    """A hold's id in state: deletion protection has no platform id of its own."""
    return f"legalhold:{name}"


def batches(ids: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + BATCH] for i in range(0, len(ordered), BATCH)]


def interval(scope: Mapping[str, Any], today: dt.date) -> str:
    """The ISO interval of a scope's period: from 00:00 on `from` to 00:00 after `to`.

    A `to` after today ends at today (no conversation has started later; a hold "to
    2199-12-31" must not ask for two centuries), unless the whole period is still ahead.
    The day after is taken only below date.max, so no `to` can overflow the arithmetic."""
    start = dt.date.fromisoformat(str(scope["from"])) if scope.get("from") else EPOCH
    last = dt.date.fromisoformat(str(scope["to"])) if scope.get("to") else today
    last = min(last, max(today, start))
    end = last + dt.timedelta(days=1) if last < dt.date.max else last
    return f"{start.isoformat()}T00:00:00.000Z/{end.isoformat()}T00:00:00.000Z"


def released(spec: Mapping[str, Any]) -> bool:
    return missing_release_fields(dict(spec)) == []


def classify_hold(change: ProposedChange, org_total: int) -> Classification:
    """hold_safety's table, then: unprotecting conversations without an approved release
    is forbidden; going over the org-wide protection limit is forbidden."""
    rules = hold_rules(change)
    before = set((change.before or {}).get("conversations") or [])
    after = set((change.after or {}).get("conversations") or [])
    if change.action is Action.UPDATE and before - after and not released(change.after or {}):
        rules.append(
            (
                Safety.FORBIDDEN,
                f"{len(before - after)} conversation(s) would lose deletion protection without an approved release",
            )
        )
    if change.action in (Action.CREATE, Action.UPDATE) and after - before and org_total > ORG_PROTECTION_LIMIT:
        rules.append(
            (
                Safety.FORBIDDEN,
                f"the holds would protect {org_total} conversations; Genesys Cloud allows {ORG_PROTECTION_LIMIT} "
                "per org (narrow a scope, or release a hold that is no longer needed)",
            )
        )
    return strongest(rules)


class LegalHoldProvider:
    """LegalHold on Genesys Cloud. See the module docstring."""

    kind = "LegalHold"
    schema = HOLD_SCHEMA

    def __init__(self, client: GenesysClient, directory: Directory, *, today: dt.date) -> None:
        self.client = client
        self.directory = directory
        self.today = today
        self._wanted: dict[str, set[str]] = {}
        self.org_total = 0

    # -- expand: which conversations each hold covers today --------------------------------

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """Each hold's spec plus `conversations`. Reads analytics and transcript search."""
        expanded: dict[str, Attributes] = {}
        for name, spec in desired.items():
            attributes = copy.deepcopy(dict(spec))
            recorded = context.recorded.get(name) or {}
            if released(spec):
                conversations: set[str] = set()
            elif (
                not spec.get("autoExtend") and recorded.get("conversations") is not None and _same_scope(recorded, spec)
            ):
                conversations = set(recorded["conversations"])
            else:
                conversations = await self._in_scope(name, spec.get("scope") or {})
            attributes["conversations"] = sorted(conversations)
            expanded[name] = attributes
        self._wanted = {name: set(a["conversations"]) for name, a in expanded.items()}
        self.org_total = len(set().union(*self._wanted.values())) if self._wanted else 0
        return expanded

    async def _in_scope(self, name: str, scope: Mapping[str, Any]) -> set[str]:
        span = interval(scope, self.today)
        users, queues, terms = scope.get("users") or [], scope.get("queues") or [], scope.get("searchTerms") or []
        predicates: list[dict[str, Any]] = []
        if users:
            user_ids = await self.directory.user_ids()
            unknown = [u for u in users if u.lower() not in user_ids]
            if unknown:
                raise ProviderError(
                    f"LegalHold/{name}: {', '.join(unknown)} is not a user of the Genesys Cloud org",
                    next_step="fix scope.users (e-mail addresses as Genesys knows them)",
                )
            predicates += [{"dimension": "userId", "value": user_ids[u.lower()], "operator": "matches"} for u in users]
        if queues:
            # A queue the manifests declare but the platform does not have yet (this plan
            # creates it) has had no calls: it adds nothing until a later plan.
            queue_ids = await self.directory.queue_ids()
            predicates += [
                {"dimension": "queueId", "value": queue_ids[q], "operator": "matches"} for q in queues if q in queue_ids
            ]
        found: set[str] = set()
        if predicates or not (users or queues or terms):
            found |= await self._details(span, predicates)
        for term in terms:
            found |= await self._search(span, str(term))
        return found

    async def _details(self, span: str, predicates: list[dict[str, Any]]) -> set[str]:
        found: set[str] = set()
        for number in range(1, MAX_PAGES):
            body: dict[str, Any] = {
                "interval": span,
                "order": "asc",
                "orderBy": "conversationStart",
                "paging": {"pageSize": DETAILS_PAGE, "pageNumber": number},
            }
            if predicates:
                body["segmentFilters"] = [{"type": "or", "predicates": predicates}]
            page = await self.client.post(DETAILS_PATH, json=body)
            conversations = page.get("conversations") or []
            found |= {str(c["conversationId"]) for c in conversations if isinstance(c, dict) and "conversationId" in c}
            if len(conversations) < DETAILS_PAGE:
                break
        return found

    async def _search(self, span: str, term: str) -> set[str]:
        start, end = span.split("/")
        found: set[str] = set()
        for number in range(1, MAX_PAGES):
            body = {
                "pageSize": SEARCH_PAGE,
                "pageNumber": number,
                "types": ["transcripts"],
                "query": [
                    {"type": "DATE_RANGE", "fields": ["startTime"], "startValue": start, "endValue": end},
                    {"type": "EXACT", "fields": ["transcript.content"], "value": term},
                ],
            }
            page = await self.client.post(TRANSCRIPTS_PATH, json=body)
            results = page.get("results") or []
            found |= {str(r["conversationId"]) for r in results if isinstance(r, dict) and "conversationId" in r}
            page_count = page.get("pageCount")
            if not results or (isinstance(page_count, int) and number >= page_count):
                break
        return found

    # -- observe and write ------------------------------------------------------------------

    async def _protected(self, ids: Iterable[str]) -> set[str]:
        protected: set[str] = set()
        for batch in batches(ids):
            answer = await self.client.post(PROTECTION_PATH, json={"conversationIds": batch})
            protected |= {str(item["id"]) for item in answer or [] if isinstance(item, dict) and "id" in item}
        return protected

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """The protected subset of (recorded ∪ wanted) conversations per hold: one set of
        protection queries (≤ 100 ids each) for all holds together, not one per hold."""
        candidates = {
            ref.address: set((ref.recorded or {}).get("conversations") or []) | self._wanted.get(ref.name, set())
            for ref in refs
        }
        everywhere = await self._protected(set().union(*candidates.values()) if candidates else set())
        found: dict[str, Observed] = {}
        for ref in refs:
            recorded = dict(ref.recorded or {})
            protected = candidates[ref.address] & everywhere
            if not recorded and not protected:
                continue
            recorded["conversations"] = sorted(protected)
            found[ref.address] = Observed(self.kind, ref.name, hold_id(ref.name), recorded)
        return found

    async def discover(self) -> list[Observed]:
        """Nothing: deletion protection cannot be listed, and has no names to export."""
        return []

    async def _set(self, ids: Iterable[str], protect: bool) -> None:
        for batch in batches(ids):
            await self.client.put(
                PROTECTION_PATH, json={"conversationIds": batch}, params={"protect": "true" if protect else "false"}
            )

    def _claimed_elsewhere(self, name: str) -> set[str]:
        others = [ids for hold, ids in self._wanted.items() if hold != name]
        return set().union(*others) if others else set()

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """Protect the hold's conversations (idempotent: protecting twice is harmless)."""
        await self._set(attributes.get("conversations") or [], True)
        return Observed(self.kind, name, hold_id(name), copy.deepcopy(attributes))

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """Protect what is new; unprotect what left (a release) unless another hold covers it."""
        wanted = set(attributes.get("conversations") or [])
        before = set((ref.recorded or {}).get("conversations") or [])
        await self._set(wanted, True)
        await self._set(before - wanted - self._claimed_elsewhere(ref.name), False)
        return Observed(self.kind, ref.name, hold_id(ref.name), copy.deepcopy(attributes))

    async def delete(self, ref: ResourceRef) -> None:
        """Unprotect the hold's conversations no other hold covers. The engine never calls
        this for a LegalHold (recon never deletes one); it exists for completeness."""
        before = set((ref.recorded or {}).get("conversations") or [])
        await self._set(before - self._claimed_elsewhere(ref.name), False)

    def normalise(self, attributes: Attributes) -> Attributes:
        result = copy.deepcopy(attributes)
        if isinstance(result.get("conversations"), list):
            result["conversations"] = sorted(set(result["conversations"]))
        return result

    def classify(self, change: ProposedChange) -> Classification:
        return classify_hold(change, self.org_total)

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        """Deletion protection changes are audited per conversation, not per hold: none."""
        return {}

    async def aclose(self) -> None:
        """The shared client is closed by the ProviderSet's owner."""


def _same_scope(recorded: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    def key(scope: Any) -> Any:
        scope = scope or {}
        return {k: sorted(v) if isinstance(v, list) else v for k, v in scope.items() if v not in (None, [])}

    return bool(key(recorded.get("scope")) == key(spec.get("scope")))
