"""The platform writer process (ProcessAttacher) against the Genesys sandbox over loopback HTTP:
the same answers as the in-process GenesysAttacher, platform errors come back as GenesysError
with their status, the secret never reaches the child's command line, a child that dies fails
what it owed and is replaced on the next request, and closing lets in-flight writes finish."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.providers.genesys.client import ClientSettings
from reconciler.providers.genesys.errors import GenesysError
from reconciler.runtime.snapshot.attach_worker import NICENESS, ProcessAttacher
from reconciler.sandbox import GenesysSandbox


@pytest.fixture
def org(tmp_path: Path) -> Iterator[GenesysSandbox]:
    with GenesysSandbox(tmp_path / "org.json", client_secret="s3cret-never-in-argv") as sandbox:
        yield sandbox


def settings(org: GenesysSandbox) -> ClientSettings:
    return ClientSettings(org.base_url, org.base_url, org.client_id, org.client_secret, rate_per_minute=60_000)


def a_call(org: GenesysSandbox) -> tuple[str, str]:
    token = httpx.post(
        f"{org.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(org.client_id, org.client_secret),
    ).json()["access_token"]
    with httpx.Client(base_url=org.base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        (conversation,) = http.post(
            "/api/v2/sandbox/conversations", json={"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"]}
        ).json()["conversations"]
        customer = http.get(f"/api/v2/conversations/calls/{conversation}").json()["participants"][0]
    return conversation, customer["id"]


def participant_data(org: GenesysSandbox, conversation: str, participant: str) -> dict[str, str]:
    return dict(org.store.conversation(conversation)["attributes"].get(participant, {}))


async def until_requested(attacher: ProcessAttacher) -> None:
    """Wait (a bounded number of loop turns) until a request has been written to the child."""
    for _ in range(1000):
        if attacher._pending:
            return
        await asyncio.sleep(0)
    raise AssertionError("no request was sent")


def test_reads_the_recording_and_writes_participant_data(org: GenesysSandbox) -> None:
    conversation, participant = a_call(org)

    async def scenario() -> str | None:
        async with ProcessAttacher(settings(org)) as attacher:
            recording = await attacher.recording_id(conversation)
            await attacher.attach(conversation, participant, {"market_snapshot": '{"commodity":2.45}'})
            return recording

    recording = asyncio.run(scenario())
    assert recording and recording.strip()
    assert participant_data(org, conversation, participant) == {"market_snapshot": '{"commodity":2.45}'}


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [("unknown participant: the PATCH is refused", 404), ("value not text: the platform says 400", 400)],
    ids=["unknown-participant-404", "non-text-value-400"],
)
def test_platform_errors_come_back_as_genesys_errors(org: GenesysSandbox, case: str, expected_status: int) -> None:
    conversation, participant = a_call(org)
    target, attributes = ("no-such-participant", {"k": "v"}) if expected_status == 404 else (participant, {"k": 1})

    async def scenario() -> None:
        async with ProcessAttacher(settings(org)) as attacher:
            await attacher.attach(conversation, target, attributes)

    with pytest.raises(GenesysError) as raised:
        asyncio.run(scenario())
    assert raised.value.status == expected_status, case


def test_an_unknown_conversation_has_no_recording(org: GenesysSandbox) -> None:
    async def scenario() -> str | None:
        async with ProcessAttacher(settings(org)) as attacher:
            return await attacher.recording_id("00000000-0000-0000-0000-000000000000")

    assert asyncio.run(scenario()) is None


def test_the_secret_is_not_on_the_child_command_line(org: GenesysSandbox) -> None:
    async def scenario() -> str:
        async with ProcessAttacher(settings(org)) as attacher:
            assert attacher._process is not None
            return Path(f"/proc/{attacher._process.pid}/cmdline").read_bytes().decode(errors="replace")

    command_line = asyncio.run(scenario())
    assert "attach_worker" in command_line
    assert "s3cret-never-in-argv" not in command_line


def test_a_child_that_dies_is_replaced_on_the_next_request(org: GenesysSandbox) -> None:
    conversation, participant = a_call(org)

    async def scenario() -> tuple[int, str | None]:
        async with ProcessAttacher(settings(org)) as attacher:
            assert attacher._process is not None
            os.kill(attacher._process.pid, signal.SIGKILL)
            await attacher._process.wait()
            assert attacher._reader is not None
            await attacher._reader  # the reader has seen the end
            recording = await attacher.recording_id(conversation)
            await attacher.attach(conversation, participant, {"after": "restart"})
            return attacher.restarts, recording

    restarts, recording = asyncio.run(scenario())
    assert restarts == 1
    assert recording
    assert participant_data(org, conversation, participant) == {"after": "restart"}


def test_requests_waiting_on_a_dead_child_fail_with_a_genesys_error(org: GenesysSandbox) -> None:
    conversation, _ = a_call(org)
    org.set_faults(latency_ms=2000)  # the request is in flight when the child is killed

    async def scenario() -> None:
        async with ProcessAttacher(settings(org)) as attacher:
            assert attacher._process is not None
            waiting = asyncio.create_task(attacher.recording_id(conversation))
            await until_requested(attacher)
            os.kill(attacher._process.pid, signal.SIGKILL)
            await waiting

    with pytest.raises(GenesysError, match="platform writer process ended"):
        asyncio.run(scenario())


def test_closing_lets_in_flight_writes_finish(org: GenesysSandbox) -> None:
    conversation, participant = a_call(org)
    org.set_faults(latency_ms=300)

    async def scenario() -> None:
        attacher = ProcessAttacher(settings(org))
        await attacher.start()
        writing = asyncio.create_task(attacher.attach(conversation, participant, {"late": "but written"}))
        await until_requested(attacher)
        await attacher.aclose()
        await writing

    asyncio.run(scenario())
    assert participant_data(org, conversation, participant) == {"late": "but written"}


def test_the_child_runs_at_a_lower_cpu_priority_than_the_runtime(org: GenesysSandbox) -> None:
    conversation, _ = a_call(org)

    async def scenario() -> int:
        async with ProcessAttacher(settings(org)) as attacher:
            assert attacher._process is not None
            await attacher.recording_id(conversation)  # the child is past its start-up
            return os.getpriority(os.PRIO_PROCESS, attacher._process.pid)

    assert asyncio.run(scenario()) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
