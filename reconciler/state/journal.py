"""The state journal: one JSON object per line, appended after every resource event.

A record is {"serial": N, "fence": F, "op": OP, ...data} where OP is one of

    intent   {"kind", "name", "action", "id", "started"}   a provider call is about to start
    put      {"resource": ResourceState JSON}               a create/update/import succeeded
    remove   {"address"}                                    deleted, or forgotten
    failed   {"address", "message"}                         the provider call failed

`apply_record` is the single definition of what a record does to a State: a session
applies each record it writes with it, and replay applies what it reads with it, so the
state in memory and the state after a crash are the same by construction.

Replay rules (`replay`): a record whose fence is lower than the highest fence already
applied (the snapshot's included) is ignored — it comes from a writer that lost its lock;
a record whose serial is not above the state's serial is ignored — it is already in the
snapshot (a crash between writing the snapshot and truncating the journal). A last line
that is incomplete or unreadable is a torn write from a crash and is ignored; an
unreadable line anywhere else is corruption and raises StateError naming file and line.

Called by: reconciler.state.backend (StateSession) and reconciler.state.local (read).
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.state.model import Pending, ResourceState, State, StateError

Record = dict[str, Any]

OPS = ("intent", "put", "remove", "failed")


def encode(record: Record) -> bytes:
    """`record` as one journal line (compact JSON, newline-terminated)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def apply_record(state: State, record: Record) -> None:
    """Apply one record to `state`, including its serial and fence. KeyError, TypeError or
    ValueError when the record is malformed."""
    op = record["op"]
    if op == "intent":
        kind, name, address = str(record["kind"]), str(record["name"]), f"{record['kind']}/{record['name']}"
        resource = state.resources.get(address)
        rid = None if record.get("id") is None else str(record["id"])
        if resource is None:
            resource = state.resources[address] = ResourceState(kind, name, rid, {}, updated="")
        elif rid is not None:
            resource.id = rid
        resource.pending = Pending(str(record["action"]), str(record["started"]), int(record["fence"]))
    elif op == "put":
        resource = ResourceState.from_json(record["resource"])
        state.resources[resource.address] = resource
    elif op == "remove":
        state.resources.pop(str(record["address"]), None)
    elif op == "failed":
        resource = state.resources.get(str(record["address"]))
        if resource is not None and resource.pending is not None:
            resource.pending.message = str(record["message"])
    else:
        raise ValueError(f"unknown journal operation {op!r}")
    state.serial = int(record["serial"])
    state.fence = max(state.fence, int(record["fence"]))


def _decode(line: bytes) -> Record:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if not isinstance(record.get("serial"), int) or not isinstance(record.get("fence"), int):
        raise ValueError("no integer serial and fence")
    if record.get("op") not in OPS:
        raise ValueError(f"unknown journal operation {record.get('op')!r}")
    return record


def replay(state: State, data: bytes, source: str) -> int:
    """Apply the journal `data` (the content of file `source`) to `state` following the
    replay rules of the module docstring. Returns the number of records applied."""
    lines = data.split(b"\n")
    # Everything after the last newline is an incomplete write; a complete last line that
    # cannot be read may be one too (e.g. zero-filled blocks after power loss).
    complete = lines[:-1]
    last = len(complete) if lines[-1] == b"" else 0
    applied = 0
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = _decode(line)
        except ValueError as error:
            if number == last:
                break
            raise StateError(
                f"{source} line {number} is not a valid journal record ({error})",
                next_step=f"restore {source} from a backup; to drop the records from line {number} on, "
                "truncate the file there (the resources they describe then show up in the next plan)",
            ) from None
        if record["fence"] < state.fence or record["serial"] <= state.serial:
            continue
        try:
            apply_record(state, record)
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(
                f"{source} line {number} is not a valid journal record ({error!r})",
                next_step=f"restore {source} from a backup",
            ) from None
        applied += 1
    return applied
