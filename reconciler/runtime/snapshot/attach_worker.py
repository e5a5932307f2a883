"""Platform writes in their own process: the injector's `Attacher`, served by a child interpreter.

Why. Each stamped call costs two Genesys requests (find the recording, write the participant
data). At 1,000 calls a second that is most of one core of HTTP work, and on the runtime's own
event loop it queued in front of the market-data answers: snapshots were "ready" 60-100 ms
after the call started against a 20 ms feed. `ProcessAttacher` moves those requests to a child
process with its own loop and Genesys client (`GenesysAttacher` over `PooledSender`), so the
snapshot path never waits behind a platform write, and the second core does the platform work.
The child runs at nice 5 (NICENESS): when the cores are busy, the latency-bound snapshot path
goes first and the writes, which only have to keep up, take what is left (on the sandbox bench
at 1,000 calls/s, snapshot p99 went from 27-60 ms to 26-30 ms; the writes still kept up).

Protocol, one JSON object per line over the child's stdin/stdout:

    parent -> child  first line: the client settings (ClientSettings, the secret included: it
                     travels over the pipe only, never in argv, the environment or a log)
    child -> parent  {"ready": true}
    parent -> child  {"id": n, "op": "recording_id", "conversationId"}
                     {"id": n, "op": "attach", "conversationId", "participantId", "attributes"}
    child -> parent  {"id": n, "result": ...} | {"id": n, "error": message, "status": http status}

Requests run concurrently in the child (at most `GenesysAttacher`'s 32 at once); replies come
in the order they finish. Closing stdin asks the child to finish what it has and exit.

Failure. A platform error comes back as a `GenesysError` with the child's message and status
(the injector records the call as data_fetch_failed and alerts, as in-process). If the child
dies, every request waiting on it fails with a GenesysError naming the exit code, and the next
request starts a new child. The child's own warnings go to stderr as JSON lines.

Secrets. The child holds the client secret and fetches its own OAuth token, which the parent
never sees; so the child scrubs its own outputs (reconciler.redact: its stderr, its log
lines and every error message it replies with), and the parent scrubs them again.

Called by: reconciler.cli.runtime_commands (`recon runtime`), bench/bench_runtime.py, tests.
Runs as `python -m reconciler.runtime.snapshot.attach_worker` (started by ProcessAttacher).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from reconciler import redact
from reconciler.providers.genesys.client import ClientSettings, GenesysClient
from reconciler.providers.genesys.errors import GenesysError
from reconciler.runtime import eventloop
from reconciler.runtime.snapshot.genesys_attach import GenesysAttacher

log = logging.getLogger(__name__)

MODULE = "reconciler.runtime.snapshot.attach_worker"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LINE_LIMIT = 16 * 2**20
NICENESS = 5
"""The child runs at a lower CPU priority than the runtime: when the cores are busy, the
snapshot path (latency-bound: the call has just started) goes first, and platform writes
(throughput-bound: they only have to keep up) take what is left."""


class ProcessAttacher:
    """An `Attacher` whose requests a child process sends. `start()` (or `async with`) first;
    `aclose()` lets the child finish what it has, then ends it."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._starting = asyncio.Lock()
        self.restarts = 0
        """How many times a child that had died was replaced."""

    async def __aenter__(self) -> ProcessAttacher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the child and wait until it is ready. GenesysError if it cannot start."""
        async with self._starting:
            if self._process is not None and self._process.returncode is None:
                return
            if self._process is not None:
                self.restarts += 1
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
            )  # fmt: skip
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(dataclasses.asdict(self.settings)).encode() + b"\n")
            try:
                ready = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise GenesysError(f"the platform writer process did not start in {START_TIMEOUT_S:.0f} s") from None
            if not ready.startswith(b'{"ready"'):
                await process.wait()
                raise GenesysError(f"the platform writer process failed to start (exit {process.returncode})")
            self._process = process
            self._reader = asyncio.create_task(self._read_replies(process))

    async def recording_id(self, conversation_id: str) -> str | None:
        """The call's first recording, or None (see GenesysAttacher). Read-only."""
        found = await self._call({"op": "recording_id", "conversationId": conversation_id})
        return str(found) if found else None

    async def attach(self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]) -> None:
        """Merge `attributes` into the participant's data (a PATCH: idempotent)."""
        await self._call(
            {
                "op": "attach",
                "conversationId": conversation_id,
                "participantId": participant_id,
                "attributes": dict(attributes),
            }
        )

    async def aclose(self) -> None:
        """Close the child's stdin, let it finish its requests and exit (killed after 10 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            await self._reader

    async def _call(self, request: dict[str, Any]) -> Any:
        if self._process is None or self._process.returncode is not None or self._process.stdin is None:
            await self.start()
        process = self._process
        assert process is not None and process.stdin is not None
        request_id = next(self._ids)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = reply
        try:
            process.stdin.write(json.dumps({"id": request_id, **request}).encode() + b"\n")
            await process.stdin.drain()
            return await reply
        finally:
            self._pending.pop(request_id, None)

    async def _read_replies(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                message = json.loads(line)
                reply = self._pending.get(message["id"])
            except (ValueError, KeyError, TypeError):  # never the protocol's: say so, keep reading
                log.warning("the platform writer wrote a line that is not a reply: %.80r", line)
                continue
            if reply is None or reply.done():
                continue
            if "error" in message:
                status = message.get("status")
                code = status if isinstance(status, int) and not isinstance(status, bool) else 0
                reply.set_exception(GenesysError(redact.clip(str(message["error"]), 1000), status=code))
            else:
                reply.set_result(message.get("result"))
        code = await process.wait()
        for reply in list(self._pending.values()):
            if not reply.done():
                reply.set_exception(GenesysError(f"the platform writer process ended (exit {code}) before answering"))


# -- the child ----------------------------------------------------------------------------------


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"level": record.levelname.lower(), "logger": record.name, "process": "platform-writer",
             "message": record.getMessage()}
        )  # fmt: skip


def _protocol_out() -> Any:
    """The raw stdout the replies go to (replies are scrubbed when built; sys.stdout itself is
    the scrubbing text stream, which has no binary buffer)."""
    stream = sys.__stdout__
    assert stream is not None
    return stream.buffer


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, _protocol_out())
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    settings = ClientSettings(**json.loads(await reader.readline()))
    from reconciler.providers.genesys.transport import PooledSender  # noqa: PLC0415 (aiohttp: only here)

    client = GenesysClient.from_settings(settings, sender=PooledSender())
    attacher = GenesysAttacher(client)
    writer.write(b'{"ready": true}\n')
    tasks: set[asyncio.Task[None]] = set()

    async def answer(request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": request["id"]}
        try:
            if request["op"] == "recording_id":
                reply["result"] = await attacher.recording_id(str(request["conversationId"]))
            else:
                await attacher.attach(
                    str(request["conversationId"]), str(request["participantId"]), request["attributes"]
                )
                reply["result"] = None
        except Exception as error:  # the parent raises it as a GenesysError
            reply["error"] = redact.clip(str(error) or type(error).__name__, 1000)
            reply["status"] = getattr(error, "status", 0)
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()

    try:
        while line := await reader.readline():
            task = asyncio.create_task(answer(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        await client.aclose()
        writer.close()


def main() -> None:
    redact.install()  # before the handler: it writes through the scrubbing stderr
    handler = redact.filter_handler(logging.StreamHandler(sys.stderr))
    handler.setFormatter(_JsonLines())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    with contextlib.suppress(OSError):  # a platform without priorities runs it at the parent's
        os.nice(NICENESS)
    eventloop.run(_serve())


if __name__ == "__main__":
    main()
