"""A test rig for the engine: the compliant fixture estate copied into a temporary folder,
a FakeStore as the live platform, and a LocalBackend state beside it."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

from reconciler.engine.apply import apply_checked
from reconciler.engine.plan import Plan
from reconciler.engine.planner import PlanOptions, make_plan
from reconciler.engine.reports import ApplyResult
from reconciler.engine.workspace import Workspace, open_workspace
from reconciler.providers.base import ProviderSet
from reconciler.state.local import LocalBackend
from reconciler.testing import Classifier, FakeStore, FaultPlan, fake_providers

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "compliant" / "estate.yaml"
TODAY = dt.date(2026, 11, 21)
NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


class Rig:
    def __init__(self, root: Path) -> None:
        self.dir = root / "estate"
        self.dir.mkdir()
        self.manifest = self.dir / "estate.yaml"
        shutil.copy(FIXTURE, self.manifest)
        self.store = FakeStore()
        self.backend = LocalBackend(root / "state" / "state.json")
        self.classifier: Classifier | None = None

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text(encoding="utf-8")
        assert old in text, old
        self.manifest.write_text(text.replace(old, new, 1), encoding="utf-8")

    def workspace(self) -> Workspace:
        return open_workspace([str(self.dir)], {}, today=TODAY)

    def providers(self, faults: FaultPlan | None = None) -> ProviderSet:
        return fake_providers(self.store, faults=faults, classifier=self.classifier)

    def plan(self, *, prune: bool = False, forget: bool = False, now: dt.datetime = NOW) -> Plan:
        ws = self.workspace()
        options = PlanOptions(target=ws.target, prune=prune, forget=forget)
        return asyncio.run(
            make_plan(
                ws.estate,
                ws.evaluation,
                self.backend.read(),
                self.providers(),
                options,
                manifest_digest=ws.manifest_digest,
                now=now,
            )
        )

    def apply(
        self,
        plan: Plan,
        *,
        faults: FaultPlan | None = None,
        allow_one_way: bool = False,
        now: dt.datetime = NOW,
        parallelism: int = 10,
    ) -> ApplyResult:
        ws = self.workspace()
        with self.backend.lock("apply", 0) as session:
            return asyncio.run(
                apply_checked(
                    plan, ws, session, self.providers(faults),
                    now=now, allow_one_way=allow_one_way, parallelism=parallelism,
                )
            )  # fmt: skip

    def converge(self) -> ApplyResult:
        return self.apply(self.plan())

    def actions(self, plan: Plan) -> dict[str, str]:
        """address → action, for entries that change something (adopt shown as adopt)."""
        return {
            c.address: ("adopt" if c.adopt and c.action.value == "no-op" else c.action.value)
            for c in plan.changes
            if c.changes_something
        }
