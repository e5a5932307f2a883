"""Deterministic seed data for the Genesys Cloud sandbox: traders, desk queues, past calls.

Everything derives from `random.Random(seed)` and a fixed epoch, never the clock, so two
sandboxes built with the same seed hold identical ids, names and conversations.

Called by: reconciler.sandbox.store (seed_state when there is no state file or on reset; bulk_* for
add_bulk). Imports only the stdlib.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.sandbox.wire import JsonObj, iso

SEED_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
USER_COUNT = 3  # random traders; the 17 EXAMPLE_PEOPLE come on top: a floor of 20
CONVERSATION_COUNT = 300
HOME_DIVISION_NAME = "Home"

FIRST_NAMES = [
    "Alice", "Bruno", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Liam", "Maya", "Nikos", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tariq",
    "Uma", "Viktor", "Wen", "Yara", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Adler", "Bianchi", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jansen",
    "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Silva", "Tanaka",
    "Ueda", "Vargas", "Weber", "Yilmaz", "Zhang",
]  # fmt: skip
# The people the example projects (manifests/examples) name in legal holds and collectors: they
# must exist in the org for a plan against the sandbox to resolve them. (first, last, e-mail local part)
EXAMPLE_PEOPLE = [
    ("Ahmed", "Khan", "ahmed.khan"), ("Lena", "Berg", "lena.berg"), ("Omar", "Said", "omar.said"),
    ("James", "O'Connor", "james.oconnor"), ("Priya", "Raman", "priya.raman"), ("Daniel", "Kim", "daniel.kim"),
    ("Thomas", "Nguyen", "thomas.nguyen"), ("Hannah", "Cohen", "hannah.cohen"), ("Diego", "Ramirez", "diego.ramirez"),
    ("Sofia", "Alvarez", "sofia.alvarez"), ("Olivia", "Brooks", "olivia.brooks"), ("Michael", "Weiss", "michael.weiss"),
    ("Rachel", "Goldberg", "rachel.goldberg"), ("Grace", "Patel", "grace.patel"), ("Kevin", "Murphy", "kevin.murphy"),
    ("Maria", "Chen", "maria.chen"), ("Nadia", "Fischer", "nadia.fischer"),
]  # fmt: skip
# Two desks, as the example projects declare them: the EU energy desk and the US FX desk. The
# examples' service queues (customer-service, fx-client-services) are not seeded, so a first plan
# both adopts existing queues and creates new ones.
DESKS = {
    "energy-desk-gas": "energy", "energy-desk-power": "energy", "energy-desk-carbon": "energy",
    "fx-spot": "fx", "fx-forwards": "fx", "fx-options": "fx",
}  # fmt: skip
DESK_PEOPLE = {
    "energy": {"ahmed.khan", "lena.berg", "omar.said", "olivia.brooks", "michael.weiss", "sofia.alvarez"},
    "fx": {"james.oconnor", "priya.raman", "daniel.kim", "thomas.nguyen", "hannah.cohen", "diego.ramirez",
           "rachel.goldberg", "grace.patel", "kevin.murphy"},
}  # fmt: skip
HISTORY_DAYS = 420
"""Past conversations start up to this many days before SEED_EPOCH (back to September 2025)."""
FLAGGED_PHRASES = ["guaranteed return", "private placement", "the fix", "WMR", "push it through"]
"""Phrases the examples' legal holds search for; a few seeded transcripts contain one."""
INSTRUMENTS = ["EUR/USD", "GBP/USD", "USD/JPY", "Bund Dec future", "UST 10y", "Brent Jan", "ACME 5y CDS", "VOD LN"]
COUNTERPARTIES = ["Northwind Capital", "Contoso Asset Mgmt", "Fabrikam Pension Fund", "Tailspin Hedge", "Litware Bank"]


def seeded_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seed_state(seed: int) -> dict[str, Any]:
    """The initial org: users, queues, recording settings and conversations for `seed`."""
    rng = random.Random(seed)
    division = {"id": seeded_uuid(rng), "name": HOME_DIVISION_NAME, "selfUri": ""}
    division["selfUri"] = f"/api/v2/authorization/divisions/{division['id']}"
    users = _users(rng)
    queues = _queues(rng, division, users)
    conversations = _conversations(rng, queues, users)
    members = {q["id"]: q.pop("_memberIds") for q in queues}
    return {
        "division": division,
        "users": {u["id"]: u for u in users},
        "queues": {q["id"]: q for q in queues},
        "queueMembers": members,
        "policies": {},
        "settings": {
            "maxSimultaneousStreams": 5,
            "maxConfigurableScreenRecordingStreams": 1,
            "regionalRecordingStorageEnabled": False,
            "recordingPlaybackUrlTtl": 60,
            "recordingBatchDownloadUrlTtl": 720,
        },
        "protected": [],
        "conversations": conversations,
        "audit": [],
    }


def _users(rng: random.Random) -> list[JsonObj]:
    firsts = rng.sample(FIRST_NAMES, USER_COUNT)
    lasts = rng.sample(LAST_NAMES, USER_COUNT)
    people = [(f, la, f"{f.lower()}.{la.lower()}") for f, la in zip(firsts, lasts, strict=True)] + EXAMPLE_PEOPLE
    users = []
    for first, last, local in people:
        user_id = seeded_uuid(rng)
        users.append(
            {
                "id": user_id,
                "name": f"{first} {last}",
                "email": f"{local}@acme.example",
                "username": f"{local}@acme.example",
                "title": "Trader",
                "department": "Markets",
                "state": "active",
                "version": 1,
                "selfUri": f"/api/v2/users/{user_id}",
            }
        )
    return sorted(users, key=lambda u: u["name"])


def _queues(rng: random.Random, division: JsonObj, users: list[JsonObj]) -> list[JsonObj]:
    created = iso(SEED_EPOCH - timedelta(days=HISTORY_DAYS + 80))
    queues = []
    for name, desk in DESKS.items():
        queue_id = seeded_uuid(rng)
        local = {u["email"].split("@")[0]: u for u in users}
        regulars = [local[p] for p in sorted(DESK_PEOPLE[desk]) if p in local]
        others = [u for u in users if u not in regulars]
        members = rng.sample(regulars, min(len(regulars), rng.randint(3, 5))) + rng.sample(others, 1)
        queues.append(
            {
                "id": queue_id,
                "name": name,
                "description": f"{name} inbound client line",
                "division": {"id": division["id"], "name": division["name"], "selfUri": division["selfUri"]},
                "suppressInQueueCallRecording": False,
                "enableTranscription": rng.random() < 0.5,
                "enableAudioMonitoring": False,
                "memberCount": len(members),
                "dateCreated": created,
                "dateModified": created,
                "modifiedBy": "seed",
                "selfUri": f"/api/v2/routing/queues/{queue_id}",
                "_memberIds": [m["id"] for m in members],
            }
        )
    return queues


def _conversations(rng: random.Random, queues: list[JsonObj], users: list[JsonObj]) -> list[JsonObj]:
    by_id = {u["id"]: u for u in users}
    out: list[JsonObj] = []
    for _ in range(CONVERSATION_COUNT):
        queue = rng.choice(queues)
        traders = rng.sample(queue["_memberIds"], rng.choice([1, 1, 1, 2]))
        start = SEED_EPOCH - timedelta(seconds=rng.randint(0, HISTORY_DAYS * 86400))
        side, qty, instrument = rng.choice(["buy", "sell"]), rng.choice([5, 10, 25, 50, 100]), rng.choice(INSTRUMENTS)
        client = rng.choice(COUNTERPARTIES)
        trader = by_id[traders[0]]["name"].split()[0]
        out.append(
            {
                "id": seeded_uuid(rng),
                "startTime": iso(start),
                "endTime": iso(start + timedelta(seconds=rng.randint(20, 900))),
                "queueId": queue["id"],
                "direction": rng.choice(["inbound", "outbound"]),
                "participants": [
                    {"purpose": "agent", "userId": uid, "name": by_id[uid]["name"], "email": by_id[uid]["email"]}
                    for uid in traders
                ]
                + [{"purpose": "external", "name": client}],
                "transcript": f"{client}: we'd like to {side} {qty}m {instrument}. {trader}: done, {side} {qty}m {instrument}, confirming now."
                + (f" {trader}: between us, {rng.choice(FLAGGED_PHRASES)}." if rng.random() < 0.08 else ""),
            }
        )
    return sorted(out, key=lambda c: c["startTime"])


def bulk_queues(division: JsonObj, count: int, first: int) -> list[JsonObj]:
    """`count` benchmark queues named bench-queue-NNNNN, numbered from `first` + 1."""
    rng = random.Random(f"bench-queues:{first}:{count}")
    stamp = iso(SEED_EPOCH)
    out = []
    for n in range(first + 1, first + count + 1):
        queue_id = seeded_uuid(rng)
        out.append(
            {
                "id": queue_id,
                "name": f"bench-queue-{n:05d}",
                "description": "benchmark queue",
                "division": dict(division),
                "suppressInQueueCallRecording": n % 10 == 0,
                "enableTranscription": n % 2 == 0,
                "enableAudioMonitoring": False,
                "memberCount": 0,
                "dateCreated": stamp,
                "dateModified": stamp,
                "modifiedBy": "seed",
                "createdBy": "seed",
                "selfUri": f"/api/v2/routing/queues/{queue_id}",
            }
        )
    return out


def bulk_policies(queues: list[JsonObj], count: int, first: int) -> list[JsonObj]:
    """`count` media retention policies bench-policy-NNNN, each for 1-3 of `queues` (if any)."""
    rng = random.Random(f"bench-policies:{first}:{count}")
    stamp = iso(SEED_EPOCH)
    out = []
    for n in range(first + 1, first + count + 1):
        policy_id = seeded_uuid(rng)
        chosen = rng.sample(queues, min(len(queues), rng.randint(1, 3)))
        conditions: JsonObj = {
            "forQueues": [{"id": q["id"], "name": q["name"], "selfUri": q["selfUri"]} for q in chosen],
            "directions": ["INBOUND", "OUTBOUND"],
            "mediaTypes": ["CALL"],
        }
        actions: JsonObj = {
            "retainRecording": True,
            "deleteRecording": False,
            "alwaysDelete": False,
            "retentionDuration": {
                "archiveRetention": {"days": rng.choice([90, 180, 365]), "storageMedium": "CLOUDARCHIVE"},
                "deleteRetention": {"days": rng.choice([1827, 2557])},
            },
        }
        out.append(
            {
                "id": policy_id,
                "name": f"bench-policy-{n:04d}",
                "order": n,
                "description": "benchmark policy",
                "enabled": True,
                "conditions": conditions,
                "actions": actions,
                "mediaPolicies": {"callPolicy": {"conditions": conditions, "actions": actions}},
                "createdDate": stamp,
                "modifiedDate": stamp,
                "selfUri": f"/api/v2/recording/mediaretentionpolicies/{policy_id}",
            }
        )
    return out
