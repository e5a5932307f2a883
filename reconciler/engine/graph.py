"""Dependency order for apply, and a scheduler that runs independent branches concurrently.

`order_edges` turns each change's `depends_on` (what the resource refers to, in the
manifests or when last applied) into "run A before B" edges among the changes of one plan:

    X depends on D, both created/updated/replaced   D before X   (a queue before its policy)
    X depends on D, and X or D is deleted           X before D   (drop the reference, then
                                                                  delete what it referred to)

`run_graph` starts every change whose predecessors are done, at most `parallelism` at a
time, in plan order among the ready ones. When a change fails, everything that must run
after it is skipped (transitively) and reported; independent branches continue and
in-flight work finishes. It never swallows BaseException (a crash or Ctrl-C propagates).

Called by: engine.apply.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from reconciler.errors import ReconError
from reconciler.providers.base import Action


class GraphCycleError(ReconError):
    """The changes of a plan cannot be ordered (a dependency cycle)."""


@dataclass(frozen=True, slots=True)
class Node:
    address: str
    action: Action
    depends_on: tuple[str, ...]


def order_edges(nodes: Sequence[Node]) -> dict[str, set[str]]:
    """address → the addresses that must finish before it (only among `nodes`)."""
    by_address = {node.address: node for node in nodes}
    before: dict[str, set[str]] = {node.address: set() for node in nodes}
    for node in nodes:
        for target in node.depends_on:
            other = by_address.get(target)
            if other is None or other.address == node.address:
                continue
            if node.action is Action.DELETE or other.action is Action.DELETE:
                before[other.address].add(node.address)
            else:
                before[node.address].add(other.address)
    return before


Worker = Callable[[str], Awaitable[bool]]
"""Runs one change; returns True on success, False on a handled failure."""
SkipReporter = Callable[[str, str], None]
"""Told about each skipped address and the failed address that caused it."""


async def run_graph(
    nodes: Sequence[Node],
    worker: Worker,
    *,
    parallelism: int,
    on_skip: SkipReporter,
) -> None:
    """Run `worker` for every node in dependency order; see the module docstring."""
    before = order_edges(nodes)
    after: dict[str, list[str]] = {node.address: [] for node in nodes}
    waiting: dict[str, int] = {}
    for address, predecessors in before.items():
        waiting[address] = len(predecessors)
        for predecessor in predecessors:
            after[predecessor].append(address)
    position = {node.address: index for index, node in enumerate(nodes)}
    ready = [(position[node.address], node.address) for node in nodes if waiting[node.address] == 0]
    heapq.heapify(ready)  # ready changes start in plan order
    done: set[str] = set()
    running: dict[asyncio.Task[bool], str] = {}
    limit = max(1, parallelism)

    def release(address: str) -> None:
        for successor in after[address]:
            waiting[successor] -= 1
            if waiting[successor] == 0 and successor not in done:
                heapq.heappush(ready, (position[successor], successor))

    def skip_after(failed: str) -> None:
        stack = list(after[failed])
        while stack:
            address = stack.pop()
            if address in done:
                continue
            done.add(address)
            on_skip(address, failed)
            stack.extend(after[address])

    try:
        while ready or running:
            while ready and len(running) < limit:
                _, address = heapq.heappop(ready)
                if address in done:
                    continue
                running[asyncio.ensure_future(worker(address))] = address
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                address = running.pop(task)
                done.add(address)
                if task.result():
                    release(address)
                else:
                    skip_after(address)
    finally:
        for task in running:
            task.cancel()
    if len(done) != len(nodes):
        stuck = sorted(a for a in position if a not in done)
        raise GraphCycleError(
            f"these changes depend on each other in a cycle and cannot be ordered: {', '.join(stuck[:10])}",
            next_step="break the cycle in the manifests (dependsOn or references), then plan again",
        )
