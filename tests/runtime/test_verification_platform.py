"""The recording platform's side of capture verification (reconciler.runtime.verification.platform):
`recordings_from_metadata` table-driven, and `PlatformRecordings` against a fake Genesys Cloud
behind httpx.MockTransport (OAuth token, paged users, the analytics details query, recording
metadata): which conversations are read, the cache of ended conversations with recordings, late
recordings, and `forget_before`. No network, no real time (the client's sleep is faked)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.providers.genesys import Endpoints, GenesysClient
from reconciler.runtime.verification.model import Recording, to_ms
from reconciler.runtime.verification.platform import PlatformRecordings, recordings_from_metadata

T = TypeVar("T")
BASE = Endpoints(login_base="http://127.0.0.1:9999", api_base="http://127.0.0.1:9999")
USERS_PATH = "/api/v2/users"
DETAILS_PATH = "/api/v2/analytics/conversations/details/query"
METADATA_PREFIX = "/api/v2/conversations/"
T0 = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
WINDOW = (T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=2))
TRADERS_BY_USER = {"Ann.Lee@acme.example": "T-1", "bob@acme.example": "T-2"}


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(seconds: float) -> str:
    return iso(T0 + dt.timedelta(seconds=seconds))


# -- recordings_from_metadata ---------------------------------------------------------------


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "rec-1", "media": "audio", "startTime": at(0), "endTime": at(60)}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


T0_MS = to_ms(T0)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param([entry()], [("rec-1", T0_MS, 60_000)], id="audio-entry-kept"),
        pytest.param([entry(media="Voice")], [("rec-1", T0_MS, 60_000)], id="voice-any-case-kept"),
        pytest.param([entry(media="call")], [("rec-1", T0_MS, 60_000)], id="call-kept"),
        pytest.param(
            [{k: v for k, v in entry().items() if k != "media"}], [("rec-1", T0_MS, 60_000)], id="no-media-is-audio"
        ),
        pytest.param([entry(media="screen")], [], id="screen-recording-skipped"),
        pytest.param([entry(media="chat")], [], id="chat-skipped"),
        pytest.param([entry(id=None)], [], id="no-id-skipped"),
        pytest.param([entry(id="")], [], id="empty-id-skipped"),
        pytest.param([entry(startTime=None)], [], id="no-start-skipped"),
        pytest.param([entry(endTime=None)], [], id="no-end-skipped"),
        pytest.param([entry(startTime="yesterday")], [], id="unparseable-start-skipped"),
        pytest.param([entry(endTime=at(-1))], [], id="end-before-start-skipped"),
        pytest.param([entry(endTime=at(0))], [("rec-1", T0_MS, 0)], id="end-equal-start-kept-zero-length"),
        pytest.param(["not-a-dict", 7, None], [], id="non-dict-entries-skipped"),
        pytest.param(
            [entry(id="a"), entry(id="s", media="screen"), entry(id="b", startTime=at(60), endTime=at(90))],
            [("a", T0_MS, 60_000), ("b", T0_MS + 60_000, 30_000)],
            id="mixed-list-keeps-the-audio-in-order",
        ),
        pytest.param({"id": "rec-1"}, [], id="dict-input-empty"),
        pytest.param(None, [], id="none-input-empty"),
        pytest.param("[]", [], id="string-input-empty"),
    ],
)
def test_recordings_from_metadata(metadata: Any, expected: list[tuple[str, int, int]]) -> None:
    found = recordings_from_metadata("conv-1", "T-1", metadata)
    assert [(r.recording_id, r.start_ms, r.duration_ms) for r in found] == expected
    assert all((r.conversation_id, r.trader_id, r.turret, r.line) == ("conv-1", "T-1", None, None) for r in found)


# -- PlatformRecordings against a fake Genesys Cloud ----------------------------------------


@dataclass
class FakeGenesys:
    """OAuth, paged users (two per page), the analytics details query (filtered by interval) and
    recording metadata (a conversation missing from `metadata` answers 404)."""

    users: list[dict[str, Any]]
    conversations: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_reads: Counter[str] = field(default_factory=Counter)
    user_pages: int = 0
    queries: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "token_type": "bearer", "expires_in": 86400})
        assert request.headers["Authorization"] == "Bearer tok"
        if request.method == "GET" and path == USERS_PATH:
            self.user_pages += 1
            number = int(request.url.params.get("pageNumber", "1"))
            count = max(1, -(-len(self.users) // 2))
            page = self.users[(number - 1) * 2 : number * 2]
            return httpx.Response(200, json={"entities": page, "pageNumber": number, "pageCount": count})
        if request.method == "POST" and path == DETAILS_PATH:
            self.queries += 1
            body = json.loads(request.content)
            low, high = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in body["interval"].split("/"))
            number = body["paging"]["pageNumber"]
            size = body["paging"]["pageSize"]
            inside = [
                c
                for c in self.conversations
                if low <= dt.datetime.fromisoformat(c["conversationStart"].replace("Z", "+00:00")) < high
            ]
            return httpx.Response(200, json={"conversations": inside[(number - 1) * size : number * size]})
        if request.method == "GET" and path.startswith(METADATA_PREFIX) and path.endswith("/recordingmetadata"):
            conversation_id = path.removeprefix(METADATA_PREFIX).removesuffix("/recordingmetadata")
            self.metadata_reads[conversation_id] += 1
            if conversation_id not in self.metadata:
                return httpx.Response(404, json={"message": "not found", "code": "not.found", "status": 404})
            return httpx.Response(200, json=self.metadata[conversation_id])
        return httpx.Response(500, json={"message": f"unexpected {request.method} {path}"})


USERS = [
    {"id": "u-ann", "email": "ann.lee@ACME.example"},
    {"id": "u-bob", "email": "bob@acme.example"},
    {"id": "u-zed", "email": "zed@acme.example"},
]


def conversation(
    conversation_id: str,
    *,
    start: float = 0,
    end: float | None = 120,
    participants: list[tuple[str, str | None]] | None = None,
) -> dict[str, Any]:
    """`participants`: (purpose, userId) pairs; default: a customer and agent Ann."""
    pairs = participants if participants is not None else [("customer", None), ("agent", "u-ann")]
    raw: dict[str, Any] = {
        "conversationId": conversation_id,
        "conversationStart": at(start),
        "participants": [
            {"participantId": f"p{i}", "purpose": purpose, **({"userId": user} if user else {})}
            for i, (purpose, user) in enumerate(pairs)
        ],
    }
    if end is not None:
        raw["conversationEnd"] = at(end)
    return raw


def audio(recording_id: str, start: float = 1, end: float = 119) -> list[dict[str, Any]]:
    return [{"id": recording_id, "media": "audio", "startTime": at(start), "endTime": at(end)}]


def run_with(fake: FakeGenesys, scenario: Callable[[PlatformRecordings], Awaitable[T]]) -> T:
    """Run `scenario` against a PlatformRecordings whose client talks to `fake`."""
    clock = [1000.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    async def main() -> T:
        client = GenesysClient(
            BASE,
            "client-id",
            "client-secret",
            transport=httpx.MockTransport(fake),
            sleep=sleep,
            clock=lambda: clock[0],
            rng=lambda: 0.0,
        )
        try:
            return await scenario(PlatformRecordings(client, TRADERS_BY_USER))
        finally:
            await client.aclose()

    return asyncio.run(asyncio.wait_for(main(), 10))


async def window(platform: PlatformRecordings) -> list[Recording]:
    return await platform.recordings(*WINDOW)


@pytest.mark.parametrize(
    ("raw", "reads", "traders"),
    [
        pytest.param(conversation("c"), 1, ["T-1"], id="ended-with-a-trader-agent-read"),
        pytest.param(
            conversation("c", participants=[("agent", "u-bob")]), 1, ["T-2"], id="user-matched-by-email-any-case"
        ),
        pytest.param(
            conversation("c", participants=[("customer", None), ("agent", "u-zed")]),
            0,
            [],
            id="agent-not-a-trader-not-read",
        ),
        pytest.param(
            conversation("c", participants=[("customer", "u-ann"), ("acd", None)]),
            0,
            [],
            id="trader-not-on-an-agent-participant-not-read",
        ),
        pytest.param(conversation("c", participants=[("customer", None)]), 0, [], id="no-agent-not-read"),
        pytest.param(conversation("c", end=None), 0, [], id="not-yet-ended-not-read"),
        pytest.param(conversation("c", start=-7200), 0, [], id="started-before-the-window-not-asked-for-by-the-query"),
    ],
)
def test_only_ended_conversations_of_a_trader_are_read(raw: dict[str, Any], reads: int, traders: list[str]) -> None:
    fake = FakeGenesys(USERS, [raw], {"c": audio("rec-c")})
    found = run_with(fake, window)
    assert fake.metadata_reads["c"] == reads
    assert [r.trader_id for r in found] == traders
    assert all((r.recording_id, r.conversation_id) == ("rec-c", "c") for r in found)


def test_a_mixed_window_reads_only_the_trader_conversations() -> None:
    fake = FakeGenesys(
        USERS,
        [
            conversation("ann-1", start=0),
            conversation("bob-1", start=300, participants=[("agent", "u-bob"), ("customer", None)]),
            conversation("zed-1", start=600, participants=[("agent", "u-zed")]),
            conversation("ann-open", start=900, end=None),
        ],
        {cid: audio(f"rec-{cid}") for cid in ("ann-1", "bob-1", "zed-1", "ann-open")},
    )

    async def scenario(platform: PlatformRecordings) -> list[Recording]:
        found = await window(platform)
        assert platform.conversations_read == 2
        return found

    found = run_with(fake, scenario)
    assert dict(fake.metadata_reads) == {"ann-1": 1, "bob-1": 1}
    assert sorted((r.conversation_id, r.trader_id) for r in found) == [("ann-1", "T-1"), ("bob-1", "T-2")]


@pytest.mark.parametrize(
    ("metadata_per_call", "reads", "found_per_call"),
    [
        pytest.param(
            [audio("r1"), audio("r1"), audio("r1")], 1, [1, 1, 1], id="with-recordings-cached-after-the-first-read"
        ),
        pytest.param([[], audio("r1"), audio("r1")], 2, [0, 1, 1], id="late-recording-asked-again-then-cached"),
        pytest.param([[], [], []], 3, [0, 0, 0], id="never-recorded-asked-every-time"),
        pytest.param([None, audio("r1"), audio("r1")], 2, [0, 1, 1], id="metadata-404-treated-as-none-yet"),
        pytest.param(
            [[{"id": "s1", "media": "screen", "startTime": at(1), "endTime": at(9)}], audio("r1"), audio("r1")],
            2,
            [0, 1, 1],
            id="only-a-screen-recording-counts-as-none-yet",
        ),
    ],
)
def test_metadata_is_cached_once_a_recording_is_found(
    metadata_per_call: list[Any], reads: int, found_per_call: list[int]
) -> None:
    fake = FakeGenesys(USERS, [conversation("c")])

    async def scenario(platform: PlatformRecordings) -> list[int]:
        sizes = []
        for metadata in metadata_per_call:
            if metadata is None:
                fake.metadata.pop("c", None)
            else:
                fake.metadata["c"] = metadata
            sizes.append(len(await window(platform)))
        return sizes

    assert run_with(fake, scenario) == found_per_call
    assert fake.metadata_reads["c"] == reads


@pytest.mark.parametrize(
    ("forget", "reads"),
    [
        pytest.param(T0 + dt.timedelta(seconds=2), 2, id="after-the-recording-start-dropped-and-read-again"),
        pytest.param(T0 + dt.timedelta(seconds=1), 1, id="at-the-recording-start-kept"),
        pytest.param(T0 - dt.timedelta(hours=1), 1, id="before-the-recording-kept"),
    ],
)
def test_forget_before_drops_the_cache(forget: dt.datetime, reads: int) -> None:
    fake = FakeGenesys(USERS, [conversation("c")], {"c": audio("r1", start=1)})

    async def scenario(platform: PlatformRecordings) -> list[Recording]:
        first = await window(platform)
        platform.forget_before(forget)
        second = await window(platform)
        assert first == second
        return second

    found = run_with(fake, scenario)
    assert [r.recording_id for r in found] == ["r1"]
    assert fake.metadata_reads["c"] == reads


def test_a_user_new_on_the_platform_is_found_by_listing_users_again() -> None:
    fake = FakeGenesys(USERS[:1], [conversation("c", participants=[("agent", "u-bob")])], {"c": audio("r1")})

    async def scenario(platform: PlatformRecordings) -> list[Recording]:
        assert await window(platform) == []
        fake.users = USERS  # Bob's account is created on the platform
        return await window(platform)

    found = run_with(fake, scenario)
    assert [(r.recording_id, r.trader_id) for r in found] == [("r1", "T-2")]
    assert fake.metadata_reads["c"] == 1


def test_a_known_user_who_is_no_trader_does_not_make_every_window_list_users_again() -> None:
    """Calls of colleagues on no collector (u-zed is on the platform, no trader) are the usual
    case on a desk queue: the users are listed once, not on every check of the window."""
    fake = FakeGenesys(USERS, [conversation("zed-1", participants=[("agent", "u-zed")]), conversation("ann-1")])
    fake.metadata["ann-1"] = audio("r1")

    async def scenario(platform: PlatformRecordings) -> int:
        for _ in range(3):
            await window(platform)
        return fake.user_pages

    pages_for_one_listing = max(1, -(-len(USERS) // 2))
    assert run_with(fake, scenario) == pages_for_one_listing
