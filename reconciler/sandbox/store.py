"""The sandbox org's data: entities, recording settings, deletion protection, audit log, persistence.

One re-entrant lock guards everything; every public method takes it, works on the in-memory
dicts, appends an audit entry (reconciler.sandbox.audit) for every create/update/delete, saves
the state file (atomic temp + replace) when one is configured, and returns deep copies so
callers never share mutable state.

Who is audited: `user=None` (the default) is a call through the API, recorded as the OAuth
client (user.id = client.id = client_id); a string is a person editing in the admin console
(user = that person, client.id = "admin-console"). See audit.py for the serviceName/entityType table.

Called by: reconciler.sandbox.genesys_server. Imports only the stdlib and its siblings.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.sandbox.audit import CONSOLE_CLIENT_ID, audit_entry, property_changes
from reconciler.sandbox.seed import bulk_policies, bulk_queues, seed_state
from reconciler.sandbox.wire import (
    ApiError,
    JsonObj,
    bad_request,
    iso,
    not_found,
    now_iso,
    page,
    parse_iso,
    require_object,
)

API_USER = "recon-sandbox"
PROTECTION_BATCH_LIMIT = 100
PROTECTION_ORG_LIMIT = 1000
STATE_VERSION = 1
DEFAULT_ORGANIZATION: JsonObj = {"id": "6f1d3c2a-5b7e-4c1d-9a8e-0c5a7e3b2d41", "name": "Acme Trading (sandbox)"}
"""The org `GET /api/v2/organizations/me` answers when the state has no "organization" (every
state written so far): fixed, so exported archive folders stay stable across restarts."""


@dataclass(frozen=True)
class Kind:
    """How one entity collection behaves on the wire."""

    key: str  # key in the state dict
    path: str  # collection path
    entity_type: str  # audit entityType (UNCONFIRMED, see audit.py)
    service_name: str  # audit serviceName (UNCONFIRMED, see audit.py)
    created_field: str
    modified_field: str
    platform_fields: tuple[str, ...]  # owned by the platform: a client cannot set them


POLICIES = Kind(
    "policies",
    "/api/v2/recording/mediaretentionpolicies",
    "Policy",
    "Quality",
    "createdDate",
    "modifiedDate",
    ("id", "selfUri", "createdDate", "modifiedDate"),
)
QUEUES = Kind(
    "queues",
    "/api/v2/routing/queues",
    "Queue",
    "Routing",
    "dateCreated",
    "dateModified",
    ("id", "selfUri", "dateCreated", "dateModified", "modifiedBy", "memberCount", "createdBy"),
)
USERS = Kind("users", "/api/v2/users", "User", "Directory", "dateCreated", "dateModified", ("id", "selfUri"))
KINDS = {"policies": POLICIES, "mediaretentionpolicies": POLICIES, "queues": QUEUES, "users": USERS}
COLLECTIONS = ("policies", "queues", "users", "settings")
QUEUE_DEFAULTS: JsonObj = {
    "description": "",
    "suppressInQueueCallRecording": False,
    "enableTranscription": False,
    "enableAudioMonitoring": False,
}


def _name_matches(name: str, pattern: str | None) -> bool:
    """Case-insensitive; `*` wildcards allowed, otherwise an exact match."""
    if not pattern:
        return True
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


class SandboxStore:
    """All data of one sandbox org. Thread-safe; persistent when `state_path` is given."""

    def __init__(self, state_path: Path | None, seed: int, client_id: str = API_USER) -> None:
        self.lock = threading.RLock()
        self.state_path = state_path
        self.seed = seed
        self.client_id = client_id
        self._index: dict[str, JsonObj] = {}
        self._index_of: list[JsonObj] | None = None
        if state_path is not None and state_path.exists():
            self.data: dict[str, Any] = json.loads(state_path.read_text(encoding="utf-8"))
        else:
            self.data = {"version": STATE_VERSION, **seed_state(seed)}
            self._save()

    def reset(self) -> None:
        """Throw every change away: the org is re-seeded from `seed` (and saved)."""
        with self.lock:
            self.data = {"version": STATE_VERSION, **seed_state(self.seed)}
            self._save()

    # -- persistence and audit -------------------------------------------------------------

    def _save(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def _audit(
        self, user: str | None, action: str, service: str, entity_type: str, entity: JsonObj, changes: list[JsonObj]
    ) -> None:
        """Append an AuditLogMessage: `user` None is the API client, a name is a console user."""
        self.data["audit"].append(
            audit_entry(
                user=self.client_id if user is None else user,
                client_id=self.client_id if user is None else CONSOLE_CLIENT_ID,
                service=service,
                entity_type=entity_type,
                action=action,
                entity=entity,
                changes=changes,
            )
        )

    def audit_entries(self) -> list[JsonObj]:
        with self.lock:
            return copy.deepcopy(list(self.data["audit"]))

    # -- generic entity collections ---------------------------------------------------------

    def _coll(self, kind: Kind) -> dict[str, JsonObj]:
        coll: dict[str, JsonObj] = self.data[kind.key]
        return coll

    def _get(self, kind: Kind, object_id: str) -> JsonObj:
        obj = self._coll(kind).get(object_id)
        if obj is None:
            raise not_found(kind.entity_type, object_id)
        return obj

    def list_entities(self, kind: Kind, query: dict[str, str], *, max_size: int, sort_by_name: bool = False) -> JsonObj:
        with self.lock:
            items = [o for o in self._coll(kind).values() if _name_matches(str(o.get("name", "")), query.get("name"))]
            if sort_by_name:
                items.sort(key=lambda o: str(o.get("name", "")).lower())
            return copy.deepcopy(page(items, kind.path, query, max_size=max_size))

    def get(self, kind: Kind, object_id: str) -> JsonObj:
        with self.lock:
            return copy.deepcopy(self._get(kind, object_id))

    def create(self, kind: Kind, body: Any, user: str | None = None) -> JsonObj:
        body = require_object(body)
        if not str(body.get("name", "")).strip():
            raise bad_request(f"{kind.entity_type} name is required")
        with self.lock:
            object_id, stamp = str(uuid.uuid4()), now_iso()
            obj = {k: v for k, v in body.items() if k not in kind.platform_fields}
            if kind is QUEUES:
                obj = {**QUEUE_DEFAULTS, "division": self._home_division(), **obj}
                actor = self.client_id if user is None else user
                obj.update(memberCount=0, modifiedBy=actor, createdBy=actor)
                self.data["queueMembers"][object_id] = []
            obj.update({"id": object_id, kind.created_field: stamp, kind.modified_field: stamp})
            obj["selfUri"] = f"{kind.path}/{object_id}"
            self._coll(kind)[object_id] = obj
            self._audit(user, "Create", kind.service_name, kind.entity_type, obj, property_changes({}, obj))
            self._save()
            return copy.deepcopy(obj)

    def replace(self, kind: Kind, object_id: str, body: Any, user: str | None = None) -> JsonObj:
        """PUT: the body replaces every client-owned field; platform-owned fields are kept.

        For queues, fields the client omits fall back to their defaults (the read-modify-write
        trap of the real API; UNCONFIRMED in detail) except `division`, which is kept.
        """
        body = require_object(body)
        with self.lock:
            old = self._get(kind, object_id)
            new = {k: v for k, v in body.items() if k not in kind.platform_fields}
            if kind is QUEUES:
                new = {**QUEUE_DEFAULTS, "division": old.get("division"), **new}
            return self._store_update(kind, old, new, user)

    def merge(self, kind: Kind, object_id: str, body: Any, user: str | None = None) -> JsonObj:
        """PATCH (and out-of-band edits): merge top-level keys into the stored object."""
        body = require_object(body)
        with self.lock:
            old = self._get(kind, object_id)
            new = {**old, **{k: v for k, v in body.items() if k not in kind.platform_fields}}
            return self._store_update(kind, old, new, user)

    def _store_update(self, kind: Kind, old: JsonObj, new: JsonObj, user: str | None) -> JsonObj:
        for field in kind.platform_fields:
            if field in old:
                new[field] = old[field]
        new[kind.modified_field] = now_iso()
        if kind is QUEUES:
            new["modifiedBy"] = self.client_id if user is None else user
        self._coll(kind)[old["id"]] = new
        self._audit(user, "Update", kind.service_name, kind.entity_type, new, property_changes(old, new))
        self._save()
        return copy.deepcopy(new)

    def delete(self, kind: Kind, object_id: str, user: str | None = None) -> None:
        with self.lock:
            old = self._get(kind, object_id)
            del self._coll(kind)[object_id]
            self.data.get("queueMembers", {}).pop(object_id, None)
            self._audit(user, "Delete", kind.service_name, kind.entity_type, old, property_changes(old, {}))
            self._save()

    def _home_division(self) -> JsonObj:
        return copy.deepcopy(dict(self.data["division"]))

    # -- recording settings -----------------------------------------------------------------

    def get_settings(self) -> JsonObj:
        with self.lock:
            return copy.deepcopy(dict(self.data["settings"]))

    def put_settings(self, body: Any, user: str | None = None, *, merge: bool = False) -> JsonObj:
        body = require_object(body)
        with self.lock:
            old = dict(self.data["settings"])
            new = {**old, **body} if merge else dict(body)
            self.data["settings"] = new
            entity = {"id": "recordingsettings", "name": "Recording settings"}
            self._audit(user, "Update", "Quality", "RecordingSettings", entity, property_changes(old, new))
            self._save()
            return copy.deepcopy(new)

    # -- deletion protection ----------------------------------------------------------------

    @staticmethod
    def _conversation_ids(body: Any) -> list[str]:
        ids = require_object(body).get("conversationIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise bad_request("conversationIds must be a list of conversation ids")
        if len(ids) > PROTECTION_BATCH_LIMIT:
            raise bad_request(f"at most {PROTECTION_BATCH_LIMIT} conversationIds per request, got {len(ids)}")
        return list(dict.fromkeys(ids))

    def set_protection(self, body: Any, protect: bool, user: str | None = None) -> None:
        ids = self._conversation_ids(body)
        with self.lock:
            current: list[str] = self.data["protected"]
            present = set(current)
            if protect:
                added = [i for i in ids if i not in present]
                if len(current) + len(added) > PROTECTION_ORG_LIMIT:
                    raise bad_request(
                        f"protecting {len(added)} more conversations would exceed the org limit of "
                        f"{PROTECTION_ORG_LIMIT} ({len(current)} protected now)",
                        "limit.exceeded",
                    )
                current.extend(added)
                changed = added
            else:
                changed = [i for i in ids if i in present]
                gone = set(changed)
                self.data["protected"] = [i for i in current if i not in gone]
            for conv_id in changed:
                change = [
                    {
                        "property": "deletionProtected",
                        "oldValues": [str(not protect).lower()],
                        "newValues": [str(protect).lower()],
                    }
                ]
                self._audit(user, "Update", "Recording", "DeletionProtection", {"id": conv_id, "name": ""}, change)
            if changed:
                self._save()

    def query_protection(self, body: Any) -> list[JsonObj]:
        """Which of the given conversations are protected: `[{"id", "selfUri"}]` (AddressableEntityRef)."""
        ids = self._conversation_ids(body)
        with self.lock:
            present = set(self.data["protected"])
        return [{"id": i, "selfUri": f"/api/v2/conversations/{i}"} for i in ids if i in present]

    def protected_count(self) -> int:
        with self.lock:
            return len(self.data["protected"])

    # -- the organization and conversations -------------------------------------------------------

    def organization(self) -> JsonObj:
        """`{"id", "name"}` of the org (GET /api/v2/organizations/me)."""
        with self.lock:
            return copy.deepcopy(dict(self.data.get("organization") or DEFAULT_ORGANIZATION))

    def conversations(self) -> list[JsonObj]:
        with self.lock:
            return copy.deepcopy(list(self.data["conversations"]))

    def conversation(self, conversation_id: str) -> JsonObj:
        """One conversation (a copy) with its participants' attributes; ApiError 404 if unknown."""
        with self.lock:
            found = self._conversation(conversation_id)
            attributes = self._attributes().get(conversation_id, {})
            # Stored calls are flat JSON (fields, a list of flat participant dicts): copying two
            # levels is a full copy, at a tenth of deepcopy's cost on the runtime's hot path.
            return {
                **found,
                "participants": [dict(p) for p in found.get("participants", [])],
                "attributes": {pid: dict(values) for pid, values in attributes.items()},
            }

    def set_attributes(self, conversation_id: str, participant_id: str, attributes: dict[str, str]) -> None:
        """Merge participant attributes; kept in memory until the next save or `flush`
        (see reconciler.sandbox.conversations)."""
        with self.lock:
            self._conversation(conversation_id)
            self._attributes().setdefault(conversation_id, {}).setdefault(participant_id, {}).update(attributes)

    def flush(self) -> None:
        """Write what is only in memory (participant attributes) to the state file."""
        with self.lock:
            self._save()

    def _attributes(self) -> dict[str, dict[str, dict[str, str]]]:
        found: dict[str, dict[str, dict[str, str]]] = self.data.setdefault("attributes", {})
        return found

    def _conversation(self, conversation_id: str) -> JsonObj:
        conversations: list[JsonObj] = self.data["conversations"]
        if self._index_of is not conversations or len(self._index) != len(conversations):  # added or reset
            self._index = {str(c["id"]): c for c in conversations}
            self._index_of = conversations
        found = self._index.get(conversation_id)
        if found is None:
            raise ApiError(404, "not.found", f"no conversation {conversation_id}")
        return found

    def add_conversations(self, body: Any) -> JsonObj:
        """Sandbox-only: calls that just happened, e.g. for a hold's autoExtend or a benchmark.

        Body {queue: name, users: [e-mail], startTime?: ISO (default now), transcript?: str,
        count?: int (default 1, at most 5000), durationMs?: int (the recording's length, default
        60000), direction?: "inbound" | "outbound" (default inbound)} -> {"conversations": [ids]}."""
        body = require_object(body)
        count = body.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= 5000:
            raise bad_request("count must be an integer from 1 to 5000")
        users = body.get("users") or []
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise bad_request("users must be a list of e-mail addresses")
        start = parse_iso(str(body["startTime"])) if body.get("startTime") else datetime.now(UTC)
        duration, direction = body.get("durationMs", 60_000), body.get("direction", "inbound")
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
            raise bad_request("durationMs must be an integer >= 0 (milliseconds)")
        if direction not in {"inbound", "outbound"}:
            raise bad_request("direction must be inbound or outbound")
        with self.lock:
            queue = next((q for q in self.data["queues"].values() if q.get("name") == body.get("queue")), None)
            if queue is None:
                raise bad_request(f"queue {body.get('queue')!r} does not exist")
            by_mail = {str(u.get("email", "")).lower(): u for u in self.data["users"].values()}
            missing = [u for u in users if u.lower() not in by_mail]
            if missing:
                raise bad_request(f"users {missing} do not exist")
            agents = [by_mail[u.lower()] for u in users]
            made = []
            for n in range(count):
                began = start + timedelta(seconds=n)
                made.append(
                    {
                        "id": str(uuid.uuid4()),
                        "startTime": iso(began),
                        "endTime": iso(began + timedelta(milliseconds=duration)),
                        "queueId": queue["id"],
                        "direction": direction,
                        "participants": [
                            {"purpose": "agent", "userId": a["id"], "name": a["name"], "email": a["email"]}
                            for a in agents
                        ]
                        + [{"purpose": "external", "name": "Sandbox Caller"}],
                        "transcript": str(body.get("transcript") or "Sandbox Caller: hello. Trader: hello."),
                    }
                )
            self.data["conversations"].extend(made)
            self._save()
            return {"conversations": [c["id"] for c in made]}

    def queue_names(self) -> dict[str, str]:
        with self.lock:
            return {q["id"]: str(q.get("name", "")) for q in self.data["queues"].values()}

    def add_bulk(self, queues: int, policies: int) -> None:
        """Insert `queues` bench queues and `policies` bench policies directly: no audit, one save.

        Numbering continues after bench objects already present. Each policy's conditions.forQueues
        names 1-3 of the queues added by this call (or of the existing queues when none are added).
        """
        with self.lock:
            start_q = sum(1 for q in self.data["queues"].values() if str(q.get("name", "")).startswith("bench-queue-"))
            start_p = sum(
                1 for p in self.data["policies"].values() if str(p.get("name", "")).startswith("bench-policy-")
            )
            new_queues = bulk_queues(self._home_division(), queues, start_q)
            targets = new_queues or list(self.data["queues"].values())
            new_policies = bulk_policies(copy.deepcopy(targets), policies, start_p)
            self.data["queues"].update({q["id"]: q for q in new_queues})
            self.data["queueMembers"].update({q["id"]: [] for q in new_queues})
            self.data["policies"].update({p["id"]: p for p in new_policies})
            self._save()

    # -- out-of-band edits ------------------------------------------------------------------

    def find_id(self, collection: str, name: str) -> str:
        """The id of the one object of `collection` called `name` (case-insensitive). KeyError if none."""
        kind = KINDS[collection]
        with self.lock:
            ids = [str(o["id"]) for o in self._coll(kind).values() if str(o.get("name", "")).lower() == name.lower()]
        if len(ids) != 1:
            raise KeyError(f"{collection} named {name!r}: {len(ids)} found")
        return ids[0]

    def mutate(self, collection: str, object_id: str, changes: dict[str, Any], changed_by: str) -> JsonObj:
        """Apply `changes` (top-level merge) as `changed_by` would in the admin console.

        collection: one of COLLECTIONS (or "mediaretentionpolicies"); object_id is ignored for
        "settings". Raises ValueError for an unknown collection or a platform-owned key in
        `changes`, KeyError for an unknown id.
        """
        if collection == "settings":
            return self.put_settings(changes, changed_by, merge=True)
        kind = KINDS.get(collection)
        if kind is None:
            raise ValueError(f"unknown collection {collection!r}; one of {list(COLLECTIONS)}")
        owned = sorted(set(changes) & set(kind.platform_fields))
        if owned:
            raise ValueError(f"changes.{owned[0]} is owned by the platform and cannot be edited")
        with self.lock:
            if object_id not in self._coll(kind):
                raise KeyError(f"{collection} {object_id} not found")
            return self.merge(kind, object_id, changes, changed_by)
