"""Child process for the crash tests: plan and apply the estate in DIR against the
file-backed fake platform STORE, and kill -9 itself on mutating provider call K.

    python crash_child.py DIR STORE STATE K before|after

Run by tests/engine/test_crash.py; not a test itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from pathlib import Path
from typing import Literal, cast

from reconciler.engine.apply import apply_checked
from reconciler.engine.planner import PlanOptions, make_plan
from reconciler.engine.workspace import open_workspace
from reconciler.state.local import LocalBackend
from reconciler.testing import FakeStore, FaultPlan, fake_providers


def main() -> int:
    directory, store_path, state_path, k, point = sys.argv[1:6]
    ws = open_workspace([directory], {}, today=dt.date(2026, 11, 21))
    faults = FaultPlan(
        crash_after=int(k),
        crash_point=cast(Literal["before", "after"], point),
        on_crash=lambda: os.kill(os.getpid(), signal.SIGKILL),
    )
    providers = fake_providers(FakeStore.open(Path(store_path)), faults=faults)
    backend = LocalBackend(Path(state_path))
    now = dt.datetime.now(dt.UTC)
    with backend.lock("apply", 0) as session:
        plan = asyncio.run(
            make_plan(
                ws.estate, ws.evaluation, session.state, providers, PlanOptions(target=ws.target),
                manifest_digest=ws.manifest_digest, now=now,
            )
        )  # fmt: skip
        result = asyncio.run(
            apply_checked(plan, ws, session, providers, now=now, allow_one_way=True, recheck=False, parallelism=3)
        )
    print(f"completed: {result.counts()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
