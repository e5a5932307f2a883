"""Where the CollectorTopology's collectors connect, per target.

On a named target the manifests' endpoints and token references are used as written (the
token is resolved from the environment or a file at each connect). On the sandbox, each
collector gets a TradeSense server of the same name on the sandbox's TradeSense service,
created from the collector's traders (an HA collector gets a primary/secondary pair); the
collector's endpoints are pointed at it and its token is the server's test token. Creating
is idempotent: an existing server of that name is reused as it is.

`provision_sandbox_servers` is also what `recon sandbox floor` calls first, so the floor's
calls by covered traders produce CDRs.

Called by: reconciler.cli.verify_commands, reconciler.cli.runtime_commands,
reconciler.cli.sandbox_commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reconciler.cli.targets import resolve_reference, sandbox_dir
from reconciler.engine.workspace import Workspace
from reconciler.errors import UsageError
from reconciler.manifest.kinds.runtime import CollectorTopologySpec, Endpoints
from reconciler.manifest.project import SANDBOX
from reconciler.sandbox.process import ensure_running

SANDBOX_TOKEN_PREFIX = "sandbox-tradesense:"


@dataclass(frozen=True, slots=True)
class TopologyTarget:
    """One CollectorTopology as the collectors will reach it."""

    name: str
    spec: CollectorTopologySpec
    resolve: Callable[[str], str]
    """Token reference -> value (never printed)."""


def topologies(ws: Workspace, only: str | None = None) -> list[tuple[str, CollectorTopologySpec]]:
    """The CollectorTopology manifests (one, with `only`); UsageError when there is none."""
    found = []
    for resource in ws.estate.of_kind("CollectorTopology"):
        assert isinstance(resource.spec, CollectorTopologySpec)
        if only is None or resource.name == only:
            found.append((resource.name, resource.spec))
    if not found:
        names = ", ".join(r.name for r in ws.estate.of_kind("CollectorTopology")) or "none is declared"
        raise UsageError(
            f"no CollectorTopology {only!r} to verify ({names})" if only else "no CollectorTopology is declared",
            next_step="declare one (see docs/kinds/CollectorTopology.md) or name one with --topology",
        )
    return found


def queue_members(ws: Workspace) -> dict[str, list[str]]:
    """Queue name -> its manifest's members (e-mails): the desks of the verification report."""
    members: dict[str, list[str]] = {}
    for resource in ws.estate.of_kind("Queue"):
        listed = getattr(resource.spec, "members", None) or []
        if listed:
            members[resource.name] = [str(m) for m in listed]
    return members


def topology_target(ws: Workspace, name: str, spec: CollectorTopologySpec) -> TopologyTarget:
    """The topology as the collectors reach it on the project's target."""
    if ws.project.target != SANDBOX:
        return TopologyTarget(name, spec, lambda ref: resolve_reference(ref, ws.root, "token"))
    servers = provision_sandbox_servers(sandbox_dir(ws.root), spec)
    tokens = {f"{SANDBOX_TOKEN_PREFIX}{c}": str(server["token"]) for c, server in servers.items()}
    collectors = [
        collector.model_copy(
            update={
                "endpoints": Endpoints.model_construct(
                    primary=str(servers[collector.name]["primary"]),
                    secondary=servers[collector.name].get("secondary") or None,
                ),
                "token": f"{SANDBOX_TOKEN_PREFIX}{collector.name}",
            }
        )
        for collector in spec.collectors
    ]

    def resolve(ref: str) -> str:
        if ref not in tokens:
            raise UsageError(f"no sandbox TradeSense token for {ref}")
        return tokens[ref]

    return TopologyTarget(name, spec.model_copy(update={"collectors": collectors}), resolve)


def provision_sandbox_servers(directory: Path, spec: CollectorTopologySpec) -> dict[str, Mapping[str, Any]]:
    """Create (or find) one sandbox TradeSense server per collector; collector name -> the
    server as the control API describes it (primary, secondary, token)."""
    service = ensure_running(directory).services.get("tradesense")
    if not isinstance(service, Mapping) or "serversUrl" not in service:
        raise UsageError(
            "the sandbox has no TradeSense service running",
            next_step="run `recon sandbox down` then `recon sandbox up`",
        )
    url = str(service["serversUrl"])
    servers: dict[str, Mapping[str, Any]] = {}
    try:
        with httpx.Client(timeout=30.0) as client:
            for collector in spec.collectors:
                body = {
                    "name": collector.name,
                    "switch": spec.dataSource.switch,
                    "traders": [{"id": t.id, "user": t.user, "turret": t.turret} for t in collector.traders],
                    "ha": collector.endpoints.secondary is not None,
                }
                answer = client.post(url, json=body)
                if answer.status_code == 409:
                    answer = client.get(f"{url}/{collector.name}")
                if answer.status_code >= 400:
                    raise UsageError(
                        f"the sandbox refused TradeSense server {collector.name} (HTTP {answer.status_code}): "
                        f"{answer.text[:200]}",
                        next_step="fix the CollectorTopology (at most 200 traders per collector)",
                    )
                servers[collector.name] = answer.json()
    except httpx.HTTPError as error:
        raise UsageError(
            f"cannot reach the sandbox's TradeSense service: {type(error).__name__}",
            next_step="check `recon sandbox status`; restart it with `recon sandbox down` and `recon sandbox up`",
        ) from None
    return servers
