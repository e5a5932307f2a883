"""`recon sandbox`: run the embedded estate on loopback.

    recon sandbox up [--latency-ms N] [--rate-429 F] [--rate-5xx F]   start it (idempotent)
    recon sandbox status [--json]                                     where it listens, credentials
    recon sandbox down                                                stop it (idempotent)
    recon sandbox reset                                               stop it and forget its state
    recon sandbox mutate COLLECTION NAME --set KEY=VALUE ... [--by EMAIL]
                                                                      change an object "by hand"
    recon sandbox export --bucket NAME [--from DATE] [--to DATE]     the platform's S3 recording export
    recon sandbox floor --queues Q,... --count N [--rate R] [--missing-rate F] [--partial-rate F]
                        [--orphan-rate F] [--seed N] [--ago 10m]
                                                                      place ended calls on the floor (first
                                                                      creating the project's CollectorTopology
                                                                      TradeSense servers, so traders' calls
                                                                      produce CDRs)

Every command works on PROJECT_DIR/.recon/sandbox/ (endpoints.json, genesys.json,
sandbox.log). The credentials printed are the sandbox's fixed test credentials, not secrets.
Exit 0 on success, 1 on error (with what to do next).

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
import httpx

from reconciler import jsonsafe
from reconciler.cli.common import DAY, SHARE, DurationOption, FiniteFloat, check_period, cli, fail
from reconciler.durations import Duration
from reconciler.errors import ReconError, UsageError
from reconciler.jsonsafe import JsonProblem
from reconciler.sandbox import process
from reconciler.sandbox.process import COLLECTIONS, DEFAULT_CHANGED_BY, Status

SANDBOX_DIR = Path(".recon") / "sandbox"

_project_dir = click.option(
    "--project-dir",
    "project_dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The project folder; the sandbox lives in its .recon/sandbox/.",
)


def sandbox_dir(project_dir: str) -> Path:
    return Path(project_dir).resolve() / SANDBOX_DIR


def _service_line(name: str, entry: Any) -> str:
    if not isinstance(entry, dict):
        return f"  {name:<11} ?"
    if "url" in entry:
        problem = entry.get("stateProblem")
        return f"  {name:<11} {entry['url']}" + (f"  (state not restored: {problem})" if problem else "")
    return f"  {name:<11} {entry.get('status', '?')}: {entry.get('reason', '')}".rstrip(": ")


def _credential_lines(services: dict[str, Any]) -> list[str]:
    lines = []
    genesys = services.get("genesys")
    if isinstance(genesys, dict) and "url" in genesys:
        lines.append(
            f"  genesys  client id {genesys.get('clientId')}  client secret {genesys.get('clientSecret')}"
            f"  region {genesys.get('region')}  (token: POST {genesys.get('loginUrl')}/oauth/token)"
        )
    s3 = services.get("s3")
    if isinstance(s3, dict) and "url" in s3:
        lines.append(
            f"  s3       access key id {s3.get('accessKeyId')}  secret access key {s3.get('secretAccessKey')}"
            f"  region {s3.get('region')}"
        )
    marketdata = services.get("marketdata")
    if isinstance(marketdata, dict) and "url" in marketdata:
        lines.append(
            f"  marketdata  bearer token {marketdata.get('token')}  refinitiv client id {marketdata.get('clientId')}"
            f"  client secret {marketdata.get('clientSecret')}  (knobs: PUT {marketdata.get('knobsUrl')})"
        )
        dialects = marketdata.get("dialects")
        if isinstance(dialects, dict):
            lines.extend(f"    {name:<12} {url}" for name, url in dialects.items())
    return lines


def _describe(current: Status) -> str:
    if current.endpoints is None:
        lines = [f"sandbox: not running ({current.directory})"]
        if current.stale_removed:
            lines.append("  removed a stale endpoints.json left by a sandbox that is no longer running")
        lines.append("  next: start it with `recon sandbox up`")
        return "\n".join(lines) + "\n"
    endpoints = current.endpoints
    services = dict(endpoints.services)
    lines = [
        f"sandbox: running (pid {endpoints.pid}, since {endpoints.started}) in {current.directory}",
        f"  {'service':<11} endpoint or status",
        *(_service_line(name, entry) for name, entry in services.items()),
        "test credentials (fixed, not secrets):",
        *_credential_lines(services),
    ]
    return "\n".join(lines) + "\n"


@cli.group("sandbox")
def sandbox_group() -> None:
    """The embedded estate on loopback: a Genesys-Cloud-compatible API and S3."""


@sandbox_group.command("up")
@_project_dir
@click.option(
    "--latency-ms",
    type=click.IntRange(0, 60_000),
    default=0,
    show_default=True,
    help="Delay per API call (0 to 60000).",
)
@click.option("--rate-429", type=SHARE, default=0.0, show_default=True, help="Share answered 429.")
@click.option("--rate-5xx", type=SHARE, default=0.0, show_default=True, help="Share answered 503.")
def sandbox_up(project_dir: str, latency_ms: int, rate_429: float, rate_5xx: float) -> None:
    """Start the sandbox in the background (does nothing if it is already running)."""
    directory = sandbox_dir(project_dir)
    try:
        was = process.status(directory)
        endpoints = process.up(directory, latency_ms=latency_ms, rate_429=rate_429, rate_5xx=rate_5xx)
    except ReconError as error:
        fail(error)
        return
    if was.endpoints is not None:
        click.echo(f"sandbox: already running (pid {endpoints.pid}); fault options unchanged")
    click.echo(_describe(Status(directory, True, endpoints)), nl=False)
    click.echo(f"log: {directory / 'sandbox.log'}")
    click.echo("stop it with `recon sandbox down`" + _project_flag(project_dir))


def _project_flag(project_dir: str) -> str:
    return "" if project_dir == "." else f" (with --project-dir {project_dir})"


@sandbox_group.command("status")
@_project_dir
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: running, pid, dir, services.")
def sandbox_status(project_dir: str, as_json: bool) -> None:
    """Whether the sandbox runs, where each service listens, and the test credentials."""
    try:
        current = process.status(sandbox_dir(project_dir))
    except ReconError as error:
        fail(error)
        return
    if as_json:
        click.echo(json.dumps(current.to_json(), indent=2))
    else:
        click.echo(_describe(current), nl=False)


@sandbox_group.command("down")
@_project_dir
def sandbox_down(project_dir: str) -> None:
    """Stop the sandbox. Its Genesys org and its S3 (buckets, versions, locks) are kept for the next `up`."""
    try:
        stopped = process.down(sandbox_dir(project_dir))
    except ReconError as error:
        fail(error)
        return
    click.echo("sandbox: stopped" if stopped else "sandbox: was not running")


@sandbox_group.command("reset")
@_project_dir
def sandbox_reset(project_dir: str) -> None:
    """Stop the sandbox and delete its state; the next `up` starts from the seed."""
    directory = sandbox_dir(project_dir)
    try:
        removed = process.reset(directory)
    except ReconError as error:
        fail(error)
        return
    names = ", ".join(path.name for path in removed) or "nothing to remove"
    click.echo(f"sandbox: reset ({names}); `recon sandbox up` starts from the seed")


MAX_SET_BYTES = 64 * 1024
"""The largest --set value: a console edit, not a document."""


def _parse_assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--set {assignment!r} is not KEY=VALUE", next_step="write e.g. --set description=edited")
        try:
            changes[key.strip()] = jsonsafe.loads(text, what=f"--set {key.strip()}", max_bytes=MAX_SET_BYTES)
        except JsonProblem as problem:
            if "not valid JSON" not in str(problem):  # too large or too deep: not a console edit
                raise UsageError(str(problem), next_step="give a smaller value") from None
            changes[key.strip()] = text
    return changes


@sandbox_group.command("mutate")
@click.argument("collection", type=click.Choice(COLLECTIONS))
@click.argument("name")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    required=True,
    metavar="KEY=VALUE",
    help="A field to change (repeatable); VALUE is JSON when it parses, else a string.",
)
@click.option("--by", "changed_by", default=DEFAULT_CHANGED_BY, show_default=True, help="Who the audit log names.")
@_project_dir
def sandbox_mutate(collection: str, name: str, assignments: tuple[str, ...], changed_by: str, project_dir: str) -> None:
    """Change one object out of band, as a person in the admin console would (to see drift).

    NAME is the object's name (ignored for settings).
    """
    try:
        changes = _parse_assignments(assignments)
        result = process.mutate(sandbox_dir(project_dir), collection, name, changes, changed_by=changed_by)
    except ReconError as error:
        fail(error)
        return
    click.echo(f"sandbox: changed {collection} {name!r} as {changed_by}: {', '.join(sorted(changes))}")
    if result is not None:
        click.echo(json.dumps(result, indent=2))


def _export(directory: Path, payload: dict[str, Any], path: str = "/api/v2/sandbox/export") -> Any:
    """POST `path` (a sandbox control endpoint: the export, the floor) on the running sandbox; its answer."""
    endpoints = process.status(directory).endpoints
    if endpoints is None:
        raise UsageError("the sandbox is not running", next_step="start it with `recon sandbox up`")
    basic = base64.b64encode(f"{endpoints.client_id}:{endpoints.client_secret}".encode()).decode()
    try:
        with httpx.Client(base_url=endpoints.genesys_url, timeout=120.0) as client:
            token = client.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
            )
            token.raise_for_status()
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            response = client.post(path, json=payload, headers=bearer)
    except httpx.HTTPError as error:
        raise UsageError(
            f"cannot reach the sandbox at {endpoints.genesys_url}: {error}",
            next_step="check `recon sandbox status`; restart it with `recon sandbox down` and `recon sandbox up`",
        ) from None
    if response.status_code >= 400:
        try:
            message = str(response.json().get("message"))
        except (ValueError, AttributeError):
            message = response.text.strip()[:200]
        hint = "run `recon apply` first to create the archive bucket" if response.status_code == 404 else ""
        if "no resource at" in message:
            hint = "restart the sandbox (`recon sandbox down`, `recon sandbox up`) to run this recon's server"
        raise UsageError(f"the sandbox refused {path} (HTTP {response.status_code}): {message}", next_step=hint)
    return response.json()


@sandbox_group.command("export")
@click.option("--bucket", required=True, help="The S3 bucket to export into (its real name, spec.bucketName).")
@click.option("--from", "date_from", type=DAY, help="First day (UTC) of conversations to export.")
@click.option("--to", "date_to", type=DAY, help="Last day (UTC, inclusive) of conversations to export.")
@_project_dir
def sandbox_export(bucket: str, date_from: dt.date | None, date_to: dt.date | None, project_dir: str) -> None:
    """Export the recordings of the sandbox's conversations to its S3, as Genesys Cloud's
    recording export does (audio + _metadata.json per conversation)."""
    payload: dict[str, Any] = {"bucket": bucket}
    if date_from is not None:
        payload["from"] = date_from.isoformat()
    if date_to is not None:
        payload["to"] = date_to.isoformat()
    try:
        check_period(date_from, date_to)
        answer = _export(sandbox_dir(project_dir), payload)
    except ReconError as error:
        fail(error)
        return
    click.echo(f"sandbox: exported {answer.get('exported')} recordings to s3://{bucket}/{answer.get('orgId')}/")


def _provision_collectors(project_dir: str) -> list[str]:
    """When the project declares a CollectorTopology, create its collectors' TradeSense servers
    on the sandbox first, so calls by its traders produce CDRs; the servers' names."""
    from reconciler.cli.collector_targets import provision_sandbox_servers  # noqa: PLC0415
    from reconciler.engine.workspace import open_workspace  # noqa: PLC0415 (manifests only when present)
    from reconciler.manifest.kinds.runtime import CollectorTopologySpec  # noqa: PLC0415

    if not (Path(project_dir) / "recon.yaml").is_file():
        return []
    ws = open_workspace((project_dir,), {}, today=dt.datetime.now(dt.UTC).date())
    names: list[str] = []
    for resource in ws.estate.of_kind("CollectorTopology"):
        assert isinstance(resource.spec, CollectorTopologySpec)
        names += provision_sandbox_servers(sandbox_dir(project_dir), resource.spec)
    return names


@sandbox_group.command("floor")
@click.option("--queues", required=True, help="Comma-separated desk queues whose members place the calls.")
@click.option("--count", type=click.IntRange(1, 100_000), required=True, help="How many calls.")
@click.option(
    "--rate", type=FiniteFloat(0.01, 10_000), default=10.0, show_default=True, help="Calls per second (0.01 to 10000)."
)
@click.option("--missing-rate", type=SHARE, default=0.0, help="Share of calls not recorded.")
@click.option("--partial-rate", type=SHARE, default=0.0, help="Share recorded shorter than the call.")
@click.option("--orphan-rate", type=SHARE, default=0.0, help="Share recorded without a CDR.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Replay the same floor.")
@click.option(
    "--ago",
    type=DurationOption(Duration(0, "s"), Duration(365, "d")),
    default="0s",
    show_default=True,
    help="End every call at least this long ago (e.g. 10m: past the grace; at most 365d).",
)
@_project_dir
def sandbox_floor(
    queues: str,
    count: int,
    rate: float,
    missing_rate: float,
    partial_rate: float,
    orphan_rate: float,
    seed: int | None,
    ago: Duration,
    project_dir: str,
) -> None:
    """Place COUNT calls on the simulated trading floor, spaced at RATE per second and all
    ended by now: recorded conversations (announced on notification channels) and, for
    traders on a TradeSense server, their CDRs, with planted missing/partial/orphan cases."""
    payload: dict[str, Any] = {
        "queues": [q.strip() for q in queues.split(",") if q.strip()],
        "count": count,
        "rate": rate,
        "missingRate": missing_rate,
        "partialRate": partial_rate,
        "orphanRate": orphan_rate,
        "ended": True,
    }
    if seed is not None:
        payload["seed"] = seed
    try:
        payload["endedAgoMs"] = ago.milliseconds
        servers = _provision_collectors(project_dir)
        state = _export(sandbox_dir(project_dir), payload, "/api/v2/sandbox/floor")
    except ReconError as error:
        fail(error)
        return
    planted = state.get("planted") or {}
    if servers:
        click.echo(f"sandbox: TradeSense servers {', '.join(servers)} serve the CollectorTopology's traders")
    click.echo(
        f"sandbox: {state.get('calls')} calls placed on {', '.join(payload['queues'])}: {state.get('recordings')} "
        f"recordings, {state.get('cdrs')} CDRs; planted {len(planted.get('missing', []))} missing, "
        f"{len(planted.get('partial', []))} partial, {len(planted.get('orphan', []))} orphan"
    )
