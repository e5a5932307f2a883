"""The sandbox org's data: entities, recording settings, deletion protection, audit log, persistence.

One re-entrant lock guards everything; every public method takes it, works on the in-memory
dicts, appends audit entries for mutations, saves the state file (atomic temp + replace) when
one is configured, and returns deep copies so callers never share mutable state.

Audit entries follow the Genesys AuditLogMessage shape as far as it is known:
`{id, eventDate, user {id, name}, client {id}, serviceName, level, action, status,
entityType, entity {id, name}, changes [{property, oldValues [str], newValues [str]}]}`.
The serviceName/entityType values below are UNCONFIRMED guesses at the real taxonomy.

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
from pathlib import Path
from typing import Any

from reconciler.sandbox.seed import seed_state
from reconciler.sandbox.wire import ApiError, JsonObj, bad_request, not_found, now_iso, page, parse_iso

API_USER = "recon-sandbox"
PROTECTION_BATCH_LIMIT = 100
PROTECTION_ORG_LIMIT = 1000
STATE_VERSION = 1


@dataclass(frozen=True)
class Kind:
    """How one entity collection behaves on the wire."""

    key: str  # key in the state dict
    path: str  # collection path
    entity_type: str  # audit entityType (UNCONFIRMED)
    service_name: str  # audit serviceName (UNCONFIRMED)
    created_field: str
    modified_field: str
    platform_fields: tuple[str, ...]  # owned by the platform: a client cannot set them


POLICIES = Kind(
    "policies",
    "/api/v2/recording/mediaretentionpolicies",
    "MediaRetentionPolicy",
    "Recording",
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


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [value if isinstance(value, str) else json.dumps(value, sort_keys=True)]


def _changes(old: JsonObj, new: JsonObj) -> list[JsonObj]:
    keys = sorted(set(old) | set(new))
    return [
        {"property": k, "oldValues": _as_strings(old.get(k)), "newValues": _as_strings(new.get(k))}
        for k in keys
        if old.get(k) != new.get(k)
    ]


def _require_object(body: Any) -> JsonObj:
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


class SandboxStore:
    """All data of one sandbox org. Thread-safe; persistent when `state_path` is given."""

    def __init__(self, state_path: Path | None, seed: int, client_id: str = API_USER) -> None:
        self.lock = threading.RLock()
        self.state_path = state_path
        self.client_id = client_id
        if state_path is not None and state_path.exists():
            self.data: dict[str, Any] = json.loads(state_path.read_text(encoding="utf-8"))
        else:
            self.data = {"version": STATE_VERSION, **seed_state(seed)}
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
        self, user: str, action: str, service: str, entity_type: str, entity: JsonObj, changes: list[JsonObj]
    ) -> None:
        self.data["audit"].append(
            {
                "id": str(uuid.uuid4()),
                "eventDate": now_iso(),
                "user": {"id": user, "name": user},
                "client": {"id": self.client_id if user == API_USER else "admin-console"},
                "serviceName": service,
                "level": "USER",
                "action": action,
                "status": "SUCCESS",
                "entityType": entity_type,
                "entity": {"id": entity.get("id", ""), "name": entity.get("name", "")},
                "changes": changes,
            }
        )

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

    def create(self, kind: Kind, body: Any, user: str = API_USER) -> JsonObj:
        body = _require_object(body)
        if not str(body.get("name", "")).strip():
            raise bad_request(f"{kind.entity_type} name is required")
        with self.lock:
            object_id, stamp = str(uuid.uuid4()), now_iso()
            obj = {k: v for k, v in body.items() if k not in kind.platform_fields}
            if kind is QUEUES:
                obj = {**QUEUE_DEFAULTS, "division": self._home_division(), **obj}
                obj.update(memberCount=0, modifiedBy=user, createdBy=user)
                self.data["queueMembers"][object_id] = []
            obj.update({"id": object_id, kind.created_field: stamp, kind.modified_field: stamp})
            obj["selfUri"] = f"{kind.path}/{object_id}"
            self._coll(kind)[object_id] = obj
            self._audit(user, "Create", kind.service_name, kind.entity_type, obj, _changes({}, obj))
            self._save()
            return copy.deepcopy(obj)

    def replace(self, kind: Kind, object_id: str, body: Any, user: str = API_USER) -> JsonObj:
        """PUT: the body replaces every client-owned field; platform-owned fields are kept.

        For queues, fields the client omits fall back to their defaults (the read-modify-write
        trap of the real API; UNCONFIRMED in detail) except `division`, which is kept.
        """
        body = _require_object(body)
        with self.lock:
            old = self._get(kind, object_id)
            new = {k: v for k, v in body.items() if k not in kind.platform_fields}
            if kind is QUEUES:
                new = {**QUEUE_DEFAULTS, "division": old.get("division"), **new}
            return self._store_update(kind, old, new, user)

    def merge(self, kind: Kind, object_id: str, body: Any, user: str = API_USER) -> JsonObj:
        """PATCH (and out-of-band edits): merge top-level keys into the stored object."""
        body = _require_object(body)
        with self.lock:
            old = self._get(kind, object_id)
            new = {**old, **{k: v for k, v in body.items() if k not in kind.platform_fields}}
            return self._store_update(kind, old, new, user)

    def _store_update(self, kind: Kind, old: JsonObj, new: JsonObj, user: str) -> JsonObj:
        for field in kind.platform_fields:
            if field in old:
                new[field] = old[field]
        new[kind.modified_field] = now_iso()
        if kind is QUEUES:
            new["modifiedBy"] = user
        self._coll(kind)[old["id"]] = new
        self._audit(user, "Update", kind.service_name, kind.entity_type, new, _changes(old, new))
        self._save()
        return copy.deepcopy(new)

    def delete(self, kind: Kind, object_id: str, user: str = API_USER) -> None:
        with self.lock:
            old = self._get(kind, object_id)
            del self._coll(kind)[object_id]
            self.data.get("queueMembers", {}).pop(object_id, None)
            self._audit(user, "Delete", kind.service_name, kind.entity_type, old, _changes(old, {}))
            self._save()

    def _home_division(self) -> JsonObj:
        return copy.deepcopy(dict(self.data["division"]))

    # -- recording settings -----------------------------------------------------------------

    def get_settings(self) -> JsonObj:
        with self.lock:
            return copy.deepcopy(dict(self.data["settings"]))

    def put_settings(self, body: Any, user: str = API_USER, *, merge: bool = False) -> JsonObj:
        body = _require_object(body)
        with self.lock:
            old = dict(self.data["settings"])
            new = {**old, **body} if merge else dict(body)
            self.data["settings"] = new
            entity = {"id": "recordingsettings", "name": "Recording settings"}
            self._audit(user, "Update", "Recording", "RecordingSettings", entity, _changes(old, new))
            self._save()
            return copy.deepcopy(new)

    # -- deletion protection ----------------------------------------------------------------

    @staticmethod
    def _conversation_ids(body: Any) -> list[str]:
        ids = _require_object(body).get("conversationIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise bad_request("conversationIds must be a list of conversation ids")
        if len(ids) > PROTECTION_BATCH_LIMIT:
            raise bad_request(f"at most {PROTECTION_BATCH_LIMIT} conversationIds per request, got {len(ids)}")
        return list(dict.fromkeys(ids))

    def set_protection(self, body: Any, protect: bool, user: str = API_USER) -> None:
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

    # -- conversations (sandbox-only listing) -----------------------------------------------

    def list_conversations(self, query: dict[str, str]) -> JsonObj:
        start = parse_iso(query["from"]) if query.get("from") else None
        end = parse_iso(query["to"]) if query.get("to") else None
        queue_id, user_id = query.get("queueId"), query.get("userId")
        with self.lock:
            items = [
                c
                for c in self.data["conversations"]
                if (not queue_id or c["queueId"] == queue_id)
                and (not user_id or any(p.get("userId") == user_id for p in c["participants"]))
                and (start is None or parse_iso(c["startTime"]) >= start)
                and (end is None or parse_iso(c["startTime"]) < end)
            ]
            keep = ("queueId", "userId", "from", "to")
            return copy.deepcopy(page(items, "/api/v2/sandbox/conversations", query, max_size=100, keep_params=keep))

    # -- audit query --------------------------------------------------------------------------

    def query_audit(self, body: Any) -> JsonObj:
        """Answer an audit query inline (the real API runs an async query job; UNCONFIRMED details)."""
        body = _require_object(body)
        interval, service = body.get("interval"), body.get("serviceName")
        if not isinstance(interval, str) or interval.count("/") != 1:
            raise bad_request("interval is required, as ISO-8601 'start/end'")
        if not isinstance(service, str) or not service:
            raise bad_request("serviceName is required")
        lo, hi = (parse_iso(part) for part in interval.split("/"))
        getters = {
            "EntityId": lambda e: e["entity"]["id"],
            "EntityType": lambda e: e["entityType"],
            "UserId": lambda e: e["user"]["id"],
            "Action": lambda e: e["action"],
        }
        filters = body.get("filters") or []
        if not isinstance(filters, list):
            raise bad_request("filters must be a list")
        for f in filters:
            if not isinstance(f, dict) or f.get("property") not in getters:
                raise bad_request(f"unsupported filter {f!r}; supported properties: {sorted(getters)}")
        with self.lock:
            hits = [
                e
                for e in self.data["audit"]
                if e["serviceName"] == service
                and lo <= parse_iso(e["eventDate"]) < hi
                and all(getters[f["property"]](e) == f.get("value") for f in filters)
            ]
            return {"entities": copy.deepcopy(hits), "total": len(hits)}

    # -- out-of-band edits ------------------------------------------------------------------

    def mutate(self, collection: str, object_id: str, changes: dict[str, Any], changed_by: str) -> JsonObj:
        """Apply `changes` (top-level merge) as a person in the admin console would."""
        if collection == "settings":
            return self.put_settings(changes, changed_by, merge=True)
        kind = KINDS.get(collection)
        if kind is None:
            raise ValueError(f"unknown collection {collection!r}; one of {sorted([*KINDS, 'settings'])}")
        try:
            return self.merge(kind, object_id, changes, changed_by)
        except ApiError as exc:
            raise KeyError(f"{collection} {object_id} not found") from exc
