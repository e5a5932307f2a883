"""Group commit for the evidence log: every record that arrives while a commit runs goes into
the next one.

At 1,000 stamped calls a second, one SQLite transaction and one worker-thread hop per record
cost more CPU than the rest of the call's stamping, and the hops contend for the interpreter
with the event loop. `BatchedAppender.append(entry)` queues the entry and waits until it is
committed; one flush at a time runs `EvidenceLog.append_many` in a worker thread for
everything queued so far (at most `max_batch`). Under light load a batch is one record, so
nothing waits for a batch to fill; under heavy load a commit carries tens of records.

Guarantees: `append` returns only once its record is committed (the same promise as
`EvidenceLog.append`); records are chained in the order `append` was called; a failed commit
fails every entry of that batch (each caller gets the exception) and the next batch is tried
on its own.

Called by: the snapshot injector (reconciler.runtime.snapshot.injector).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from reconciler.runtime.evidence import Entry, EvidenceLog, EvidenceRecord

MAX_BATCH = 500
"""Records per commit at most (a commit of 500 takes a few milliseconds)."""


@dataclass(slots=True)
class BatchedAppender:
    """See the module docstring. Use from one event loop."""

    log: EvidenceLog
    max_batch: int = MAX_BATCH
    commits: int = 0
    """Transactions committed so far (for metrics and the bench)."""
    _queue: list[tuple[Entry, asyncio.Future[EvidenceRecord]]] = field(default_factory=list)
    _flushing: asyncio.Task[None] | None = None

    async def append(self, entry: Entry) -> EvidenceRecord:
        """Queue `entry`; return its record once committed (raises what the commit raised)."""
        future: asyncio.Future[EvidenceRecord] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="evidence-group-commit")
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                records = await asyncio.to_thread(self.log.append_many, [entry for entry, _ in batch])
            except Exception as error:  # every caller of this batch learns it; the next batch is tried
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.commits += 1
            for (_, future), record in zip(batch, records, strict=True):
                if not future.done():
                    future.set_result(record)
