"""The engine's pure parts: canonical diffs (no perpetual diffs) and dependency ordering."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.engine.diff import canonical, changes
from reconciler.engine.graph import GraphCycleError, Node, order_edges, run_graph
from reconciler.providers.base import Action, AttributeSchema

SCHEMA = AttributeSchema(
    set_paths=frozenset({("members",), ("scope", "users"), ("collectors", "*", "traders")}),
    ignored_paths=frozenset({("selfUri",), ("dateModified",)}),
)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param({"members": ["a", "b"]}, {"members": ["b", "a"]}, [], id="set-reordered-is-no-change"),
        pytest.param({"members": ["a", "a", "b"]}, {"members": ["b", "a"]}, [], id="set-duplicates-ignored"),
        pytest.param(
            {"scope": {"users": ["x"]}}, {"scope": {"users": ["y", "x"]}}, [("scope.users", ["x"], ["x", "y"])],
            id="nested-set-reported-once-at-the-set",
        ),
        pytest.param(
            {"collectors": [{"traders": ["t2", "t1"]}]}, {"collectors": [{"traders": ["t1", "t2"]}]}, [],
            id="set-inside-list-items",
        ),
        pytest.param({"order": [1, 2]}, {"order": [2, 1]}, [("order[0]", 1, 2), ("order[1]", 2, 1)], id="ordered-list-order-matters"),
        pytest.param({"selfUri": "/a", "x": 1}, {"selfUri": "/b", "x": 1}, [], id="platform-owned-field-never-shows"),
        pytest.param({"x": 1, "gone": None}, {"x": 1}, [], id="null-equals-absent"),
        pytest.param({"lock": {"mode": "COMPLIANCE"}}, {"lock": {"mode": "GOVERNANCE"}}, [("lock.mode", "COMPLIANCE", "GOVERNANCE")], id="nested-value-path"),
        pytest.param({"x": 1}, {"x": 1, "y": 2}, [("y", None, 2)], id="added-key"),
        pytest.param({"x": 1, "y": 2}, {"x": 1}, [("y", 2, None)], id="removed-key"),
    ],
)  # fmt: skip
def test_changes(
    before: dict[str, object], after: dict[str, object], expected: list[tuple[str, object, object]]
) -> None:
    found = changes(canonical(before, SCHEMA), canonical(after, SCHEMA), SCHEMA)
    assert [(c.dotted, c.before, c.after) for c in found] == expected


def test_create_and_delete_list_top_level_keys() -> None:
    after = canonical({"b": 1, "a": {"x": 2}}, SCHEMA)
    assert [(c.dotted, c.before, c.after) for c in changes(None, after, SCHEMA)] == [
        ("a", None, {"x": 2}),
        ("b", None, 1),
    ]
    assert [(c.dotted, c.after) for c in changes(after, None, SCHEMA)] == [("a", None), ("b", None)]


def test_canonical_does_not_modify_its_input() -> None:
    original = {"members": ["b", "a"], "selfUri": "/x"}
    canonical(original, SCHEMA)
    assert original == {"members": ["b", "a"], "selfUri": "/x"}


def N(address: str, action: Action = Action.CREATE, *deps: str) -> Node:
    return Node(address, action, deps)


@pytest.mark.parametrize(
    ("nodes", "edges"),
    [
        pytest.param([N("Q/a"), N("P/p", Action.CREATE, "Q/a")], {"Q/a": set(), "P/p": {"Q/a"}}, id="create-after-its-dependency"),
        pytest.param([N("Q/a", Action.DELETE), N("P/p", Action.DELETE, "Q/a")], {"Q/a": {"P/p"}, "P/p": set()}, id="delete-dependent-first"),
        pytest.param([N("Q/a", Action.DELETE), N("P/p", Action.UPDATE, "Q/a")], {"Q/a": {"P/p"}, "P/p": set()}, id="drop-reference-then-delete"),
        pytest.param([N("P/p", Action.UPDATE, "Q/a")], {"P/p": set()}, id="unchanged-dependency-is-no-edge"),
    ],
)  # fmt: skip
def test_order_edges(nodes: list[Node], edges: dict[str, set[str]]) -> None:
    assert order_edges(nodes) == edges


def _run(nodes: list[Node], failing: set[str], parallelism: int = 4) -> tuple[list[str], dict[str, str]]:
    started: list[str] = []
    skipped: dict[str, str] = {}

    async def worker(address: str) -> bool:
        started.append(address)
        await asyncio.sleep(0)
        return address not in failing

    asyncio.run(run_graph(nodes, worker, parallelism=parallelism, on_skip=skipped.__setitem__))
    return started, skipped


def test_dependents_of_a_failure_are_skipped_and_independents_continue() -> None:
    nodes = [N("Q/a"), N("P/p", Action.CREATE, "Q/a"), N("H/h", Action.CREATE, "P/p"), N("Q/b")]
    started, skipped = _run(nodes, failing={"Q/a"})
    assert set(started) == {"Q/a", "Q/b"}
    assert skipped == {"P/p": "Q/a", "H/h": "Q/a"}


def test_dependencies_run_first_and_plan_order_among_ready() -> None:
    nodes = [N("P/p", Action.CREATE, "Q/b"), N("Q/a"), N("Q/b")]
    started, _ = _run(nodes, failing=set(), parallelism=1)
    assert started == ["Q/a", "Q/b", "P/p"]


def test_parallelism_is_respected() -> None:
    running = 0
    peak = 0

    async def worker(address: str) -> bool:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1
        return True

    nodes = [N(f"Q/{i}") for i in range(20)]
    asyncio.run(run_graph(nodes, worker, parallelism=3, on_skip=lambda a, f: None))
    assert peak == 3


def test_cycle_is_reported() -> None:
    nodes = [N("A/a", Action.CREATE, "B/b"), N("B/b", Action.CREATE, "A/a")]
    with pytest.raises(GraphCycleError, match="cycle"):
        _run(nodes, failing=set())
