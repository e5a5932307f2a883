"""Deterministic seed data for the Genesys Cloud sandbox: traders, desk queues, past calls.

Everything derives from `random.Random(seed)` and a fixed epoch, never the clock, so two
sandboxes built with the same seed hold identical ids, names and conversations.

Called by: reconciler.sandbox.store (only when there is no state file). Imports only the stdlib.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.sandbox.wire import JsonObj, iso

SEED_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
USER_COUNT = 20
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
DESKS = ["FX Spot Desk", "Rates Desk", "Equities Sales", "Commodities Desk", "Credit Trading"]
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
    users = []
    for first, last in zip(firsts, lasts, strict=True):
        user_id = seeded_uuid(rng)
        users.append(
            {
                "id": user_id,
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}@acme.example",
                "username": f"{first.lower()}.{last.lower()}@acme.example",
                "title": "Trader",
                "department": "Markets",
                "state": "active",
                "version": 1,
                "selfUri": f"/api/v2/users/{user_id}",
            }
        )
    return sorted(users, key=lambda u: u["name"])


def _queues(rng: random.Random, division: JsonObj, users: list[JsonObj]) -> list[JsonObj]:
    created = iso(SEED_EPOCH - timedelta(days=400))
    queues = []
    for name in DESKS:
        queue_id = seeded_uuid(rng)
        members = rng.sample(users, rng.randint(3, 8))
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
        start = SEED_EPOCH - timedelta(seconds=rng.randint(0, 30 * 86400))
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
                "transcript": f"{client}: we'd like to {side} {qty}m {instrument}. {trader}: done, {side} {qty}m {instrument}, confirming now.",
            }
        )
    return sorted(out, key=lambda c: c["startTime"])
