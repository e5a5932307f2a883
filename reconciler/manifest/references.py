"""Reference resolution and the dependency graph between resources.

Every by-name reference a spec declares (and every `metadata.dependsOn`) must resolve to a
resource of the right kind; a dangling reference names the closest existing name. Resolved
references become edges ("A depends on B": B is applied first), and any cycle is an error
naming every resource on it. The engine orders its work by `Estate.depends_on`.

Called by: reconciler.manifest.loader; the engine reads Estate.depends_on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.explain import field_path
from reconciler.manifest.kinds import KINDS, Reference
from reconciler.manifest.kinds.base import suggest
from reconciler.manifest.model import Resource


def _references(resource: Resource) -> Iterable[tuple[Reference, tuple[str | int, ...]]]:
    for ref in resource.spec.references():
        yield ref, ("spec", *ref.field)
    for index, target in enumerate(resource.metadata.dependsOn):
        kind, _, name = target.partition("/")
        yield Reference(kind, name, ("dependsOn", index)), ("metadata", "dependsOn", index)


def resolve(
    resources: Mapping[str, Resource],
    declared_invalid: Set[str] = frozenset(),
    *,
    report_dangling: bool = True,
) -> tuple[dict[str, set[str]], list[Diagnostic]]:
    """Edges (address -> addresses it depends on) and a diagnostic per bad reference or cycle.

    `declared_invalid` holds addresses of documents that exist but failed validation (already
    reported): references to them are not called dangling. With `report_dangling` false
    (some file could not be read at all) no reference is called dangling.
    """
    by_kind: dict[str, dict[str, Resource]] = {}
    for resource in resources.values():
        by_kind.setdefault(resource.kind, {})[resource.name] = resource
    by_key: dict[tuple[str, str], dict[str, str]] = {}
    edges: dict[str, set[str]] = {address: set() for address in resources}
    problems: list[Diagnostic] = []

    def index(kind: str, key: str) -> dict[str, str]:
        if (kind, key) not in by_key:
            by_key[(kind, key)] = {str(getattr(r.spec, key)): r.address for r in by_kind.get(kind, {}).values()}
        return by_key[(kind, key)]

    for resource in resources.values():
        for ref, path in _references(resource):
            kind = ref.kind or ""
            if kind not in KINDS:
                problems.append(
                    _problem(
                        resource,
                        path,
                        "reference.kind",
                        f"'{kind}' is not a kind{suggest(kind, KINDS)}",
                        f"kinds are: {', '.join(KINDS)}",
                    )
                )
                continue
            if ref.key == "name":
                target = by_kind.get(kind, {}).get(ref.name)
                target_address = target.address if target else None
            else:
                target_address = index(kind, ref.key).get(ref.name)
            if target_address is None:
                if ref.required and report_dangling and f"{kind}/{ref.name}" not in declared_invalid:
                    names = {n for n in by_kind.get(kind, {}) if f"{kind}/{n}" != resource.address}
                    problems.append(
                        _problem(
                            resource,
                            path,
                            "reference.dangling",
                            f"{kind} '{ref.name}' does not exist{suggest(ref.name, names)}",
                            f"declare {kind}/{ref.name}, or refer to one of: {', '.join(sorted(names)) or 'none declared'}",
                        )
                    )
                continue
            if target_address == resource.address:
                # An optional pointer at oneself (a bucket logging into itself) is a rule's
                # business, not an input error; a required one (dependsOn itself) is.
                if ref.required and ref.direction != "none":
                    problems.append(
                        _problem(
                            resource,
                            path,
                            "reference.self",
                            f"{resource.address} refers to itself",
                            "refer to another resource",
                        )
                    )
                continue
            if ref.direction == "needs":
                edges[resource.address].add(target_address)
            elif ref.direction == "needed_by":
                edges[target_address].add(resource.address)
    problems.extend(_cycles(edges, resources))
    return edges, problems


def _problem(resource: Resource, path: tuple[str | int, ...], code: str, message: str, hint: str) -> Diagnostic:
    return Diagnostic(
        code=code,
        message=message,
        location=resource.location(*path),
        field=field_path(path),
        hint=hint,
        resource=resource.address,
    )


def _cycles(edges: Mapping[str, set[str]], resources: Mapping[str, Resource]) -> list[Diagnostic]:
    """One diagnostic per strongly connected component with more than one member."""
    problems: list[Diagnostic] = []
    for component in strongly_connected(edges):
        if len(component) < 2:
            continue
        ordered = sorted(component)
        cycle = " -> ".join([*ordered, ordered[0]])
        first = resources[ordered[0]]
        problems.append(
            Diagnostic(
                code="reference.cycle",
                message=f"dependency cycle: {cycle}",
                location=first.location("metadata", "name"),
                field="",
                hint="break the cycle: remove one reference or dependsOn entry",
                resource=first.address,
            )
        )
    return problems


def strongly_connected(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index_of:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(edges.get(start, ()))))]
        index_of[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index_of:
                    index_of[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index_of[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
