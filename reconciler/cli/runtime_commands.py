"""`recon runtime`: stamp calls with the market data in force when they started.

    recon runtime [PATHS] [--once [--since 10m]] [--duration 30s] [--metrics-port N] [--db PATH]
                  [--heads/--no-heads] [--heads-bucket NAME] [--verify/--no-verify]
                  [--alert-webhook URL|env:NAME|file:PATH]

Reads the MarketDataFeed manifests and runs the runtime service (reconciler.runtime.service)
against the target's Genesys org: `--once` stamps the calls on covered queues that started
in the last `--since` and have no evidence record yet, prints a summary and exits; without
it the service runs live (event intake with reconnects and gap reconciliation) until
`--duration` has passed or it is interrupted. Logs are JSON lines on stderr; metrics are
served for Prometheus on 127.0.0.1 when `--metrics-port` is given (0: any free port).

The evidence chain's head is published to the archive bucket (the manifests' only
ArchiveBucket, or --heads-bucket) every 1,000 records or 60 seconds and at exit, so a
deleted tail or a rewritten log is caught by `recon evidence verify --heads`; when the bucket
cannot be written the runtime alerts (`heads_not_published`) and goes on stamping.

On the sandbox target every feed is pointed at the sandbox's market-data server in its own
dialect, with the sandbox's test credentials and no mTLS (the manifests' URLs name the bank's
real feeds); on a named target the manifests' URLs, TLS and credentials are used as written.

When a CollectorTopology is declared (and unless --no-verify), the runtime also verifies
captures continuously (reconciler.runtime.verification.continuous): its collectors poll the
TradeSense servers (on the sandbox, servers created from the topology), and a call not
recorded or partly recorded is alerted within one poll interval plus the late-recording
grace. With --once it catches the collectors up and checks the recent calls once. Alerts
(capture gaps, collector outages, failed fetches, PII drops, unpublished heads) are JSON log
lines, and Slack-compatible JSON posts to --alert-webhook when given.

Exit 0 when every call was stamped and no capture gap was alerted, 2 when some calls were
recorded as data_fetch_failed or instruments_dropped (the feed answered but every instrument
value was withheld, e.g. for PII) or a gap was alerted, 1 error.

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler import redact
from reconciler.cli.archive_commands import pick_archive
from reconciler.cli.common import NAME, DurationOption, cli, fail, now_utc, run_async, variables, with_vars
from reconciler.cli.progress import note
from reconciler.cli.runtime_verification import Verification, alert_sink, open_verification
from reconciler.cli.targets import genesys_client, resolve_reference, sandbox_dir
from reconciler.durations import Duration
from reconciler.engine.workspace import Workspace, open_workspace
from reconciler.errors import EXIT_CHANGES, EXIT_OK, ReconError, UsageError
from reconciler.manifest.kinds.runtime import MarketDataFeedSpec
from reconciler.manifest.project import SANDBOX
from reconciler.runtime.alerts import Alert, make_alert
from reconciler.runtime.eventloop import loop_factory
from reconciler.runtime.evidence import DEFAULT_DB, ChainHead, EvidenceLog, HeadPublisher
from reconciler.runtime.service import FeedPlan, RuntimeService, freeze_startup_heap, loop_stall_monitor
from reconciler.runtime.snapshot.attach_worker import ProcessAttacher
from reconciler.runtime.snapshot.feedconfig import FeedSettings
from reconciler.runtime.snapshot.injector import ATTACHED, DROPPED
from reconciler.runtime.verification.continuous import ContinuousVerifier
from reconciler.sandbox.process import ensure_running

LOG_FIELDS = ("conversationId", "status", "lag_s", "alert", "detail")
log = logging.getLogger("reconciler.runtime")


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, logger, message and recon's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: getattr(record, key) for key in LOG_FIELDS if hasattr(record, key)})
        return json.dumps(line, default=str)


def feed_plans(ws: Workspace) -> list[FeedPlan]:
    """Each MarketDataFeed with the queues it applies to; on the sandbox, pointed at the
    sandbox's market-data server (see the module docstring)."""
    services: Mapping[str, Any] = ensure_running(sandbox_dir(ws.root)).services if ws.project.target == SANDBOX else {}
    sandbox_feed = services.get("marketdata") if isinstance(services.get("marketdata"), Mapping) else None
    plans = []
    for resource in ws.estate.of_kind("MarketDataFeed"):
        assert isinstance(resource.spec, MarketDataFeedSpec)
        settings = FeedSettings.from_spec(resource.name, resource.spec, base_dir=ws.root)
        if ws.project.target == SANDBOX:
            if sandbox_feed is None:
                raise UsageError(
                    "the sandbox has no market-data server running",
                    next_step="run `recon sandbox down` then `recon sandbox up`",
                )
            dialect = "generic-rest" if settings.provider == "ice" else settings.provider
            settings = dataclasses.replace(
                settings,
                url=str(sandbox_feed["dialects"][dialect]),
                tls=None,
                token=str(sandbox_feed["token"]),
                client_id=str(sandbox_feed["clientId"]),
                client_secret=str(sandbox_feed["clientSecret"]),
            )
        plans.append(FeedPlan(settings, tuple(resource.spec.appliesTo.queues)))
    if not plans:
        raise UsageError(
            "no MarketDataFeed or CollectorTopology is declared, so the runtime has nothing to do",
            next_step="declare one (docs/kinds/MarketDataFeed.md, docs/kinds/CollectorTopology.md)",
        )
    return plans


@dataclass(frozen=True, slots=True)
class Options:
    once: bool
    since: Duration
    duration: Duration | None
    metrics_port: int | None
    heads: bool
    heads_bucket: str | None
    verify: bool = True
    alert_webhook: str | None = None
    platform_writer: str = "process"


@dataclass(frozen=True, slots=True)
class RunOutcome:
    stamped: int
    failed: int
    """Stamped calls not `attached`: data_fetch_failed plus instruments_dropped."""
    head: ChainHead | None
    verifier: ContinuousVerifier | None
    """The capture verification that ran (its settled totals, pending calls, alerts)."""
    dropped: int = 0
    """Of `failed`, the calls recorded as instruments_dropped."""


def head_publisher(ws: Workspace, evidence: EvidenceLog, options: Options) -> tuple[HeadPublisher | None, Any]:
    """The chain-head publisher for the project's archive bucket, with its AwsClient (to
    close); (None, None) with --no-heads or when the manifests declare no ArchiveBucket."""
    if not options.heads or (options.heads_bucket is None and not ws.estate.of_kind("ArchiveBucket")):
        log.info("chain heads are not published: no ArchiveBucket is declared (or --no-heads)")
        return None, None
    from reconciler.cli.evidence_commands import archive_config  # noqa: PLC0415
    from reconciler.providers.aws.client import AwsClient  # noqa: PLC0415 (boto3 is slow to import)

    archive = pick_archive(ws, options.heads_bucket)
    aws = AwsClient(archive_config(ws, archive, "the chain heads cannot be published (or pass --no-heads)"))

    def failed(error: ReconError) -> None:
        detail = {"bucket": archive.bucket, "error": error.message}
        log.warning("alert heads_not_published", extra={"alert": "heads_not_published", "detail": detail})

    publisher = HeadPublisher(evidence, aws.s3(archive.region), archive.bucket, on_error=failed)
    return publisher, aws


async def _run(ws: Workspace, db: Path, options: Options) -> RunOutcome:
    sink = alert_sink(ws, options.alert_webhook)
    if sink is not None:
        await sink.start()

    def send(alert: Alert) -> None:
        log.warning("alert %s: %s", alert.kind, alert.summary, extra={"alert": alert.kind, "detail": alert.detail})
        if sink is not None:
            sink.send(alert)

    verification = open_verification(ws, db, send) if options.verify else None
    try:
        if ws.estate.of_kind("MarketDataFeed") or verification is None:
            outcome = await _stamp(ws, db, options, verification, send)
        else:
            await _verify_only(verification, options)
            outcome = RunOutcome(0, 0, None, verification.verifier)
    finally:
        if verification is not None:
            await verification.aclose()
        if sink is not None:
            await sink.aclose()
    return outcome


async def _verify_only(verification: Verification, options: Options) -> None:
    if options.once:
        await verification.once()
        return
    await run_for(verification.run, options.duration)


async def run_for(run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], duration: Duration | None) -> None:
    """`run(stop)` until it returns or `duration` has passed (then `stop` is set and it is awaited)."""
    stop = asyncio.Event()
    runner = asyncio.create_task(run(stop))
    try:
        await asyncio.wait_for(asyncio.shield(runner), None if duration is None else duration.seconds)
    except TimeoutError:
        pass
    finally:
        stop.set()
        await runner


async def _stamp(ws: Workspace, db: Path, options: Options, verification: Verification | None, send: Any) -> RunOutcome:
    plans = feed_plans(ws)
    from reconciler.providers.genesys.transport import PooledSender  # noqa: PLC0415 (aiohttp: slow to import)

    client, _ = genesys_client(ws.project, ws.root, sender=PooledSender())
    attacher = ProcessAttacher(client.settings()) if options.platform_writer == "process" and plans else None
    evidence = EvidenceLog(db)
    publisher, aws = head_publisher(ws, evidence, options)
    service = RuntimeService(
        client,
        plans,
        evidence,
        lambda ref: resolve_reference(ref, ws.root, "credentials"),
        lambda kind, detail: send(make_alert(kind, detail)),
        attacher=attacher,
    )
    stop_heads = asyncio.Event()
    stop_verify = asyncio.Event()
    try:
        if attacher is not None:
            await attacher.start()
        async with service:
            freeze_startup_heap()
            if options.metrics_port is not None:
                note(f"metrics on {service.metrics.serve(options.metrics_port)}")
            stall = loop_stall_monitor(service.metrics)()
            heads = asyncio.create_task(publisher.run(stop_heads)) if publisher else None
            verifying = (
                asyncio.create_task(verification.run(stop_verify))
                if verification is not None and not options.once
                else None
            )
            try:
                if options.once:
                    since = now_utc() - options.since.timedelta
                    done = await service.stamp_recent(since)
                    stamped = len(done)
                    failed = sum(1 for injection in done if injection.status != ATTACHED)
                    dropped = sum(1 for injection in done if injection.status == DROPPED)
                    if verification is not None:
                        await verification.once()
                else:
                    stamped, failed, dropped = await _live(service, options.duration)
            finally:
                stall.cancel()
                stop_heads.set()
                stop_verify.set()
                if heads is not None:
                    await heads
                if verifying is not None:
                    await verifying
            head = publisher.published[-1] if publisher and publisher.published else None
            return RunOutcome(stamped, failed, head, verification.verifier if verification else None, dropped)
    finally:
        service.metrics.stop()
        if attacher is not None:
            await attacher.aclose()
        evidence.close()
        await client.aclose()
        if aws is not None:
            await aws.aclose()


async def _live(service: RuntimeService, duration: Duration | None) -> tuple[int, int, int]:
    """Run the event intake for `duration` (None: until stopped); (calls stamped, of which not
    attached, of which instruments_dropped). Only counts are kept: a service that runs for weeks
    holds no per-call result."""
    from reconciler.runtime.intake import EventIntake  # noqa: PLC0415 (the live path only)

    counts = {"stamped": 0, "failed": 0, "dropped": 0}
    tasks: set[asyncio.Task[Any]] = set()

    def finished(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is None and task.result() is not None:
            counts["stamped"] += 1
            counts["failed"] += task.result().status != ATTACHED
            counts["dropped"] += task.result().status == DROPPED

    def sink(call: Any) -> None:  # each call is its own task: none waits on another
        task = asyncio.get_running_loop().create_task(service.stamp(call))
        tasks.add(task)
        task.add_done_callback(finished)

    def ready(channels: Any) -> None:
        logging.getLogger("reconciler.runtime").info("intake ready", extra={"detail": {"channels": list(channels)}})

    intake = EventIntake(service.client, sorted(service.queue_ids.values()), sink, on_ready=ready)
    try:
        await run_for(intake.run, duration)
    finally:
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    return counts["stamped"], counts["failed"], counts["dropped"]


SINCE = DurationOption(Duration(1, "s"), Duration(7, "d"))
"""--since: how far back `--once` looks for unstamped calls."""
RUN_FOR = DurationOption(Duration(1, "s"), Duration(365, "d"))
"""--duration: how long the live runtime runs before it exits."""


@cli.command("runtime")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--once", is_flag=True, help="Stamp the recent calls that have no evidence record yet, then exit.")
@click.option(
    "--since", type=SINCE, default="10m", show_default=True, help="With --once: how far back to look (1s to 7d)."
)
@click.option(
    "--duration",
    type=RUN_FOR,
    default=None,
    help="Run live this long (e.g. 30s; 1s to 365d), then exit; default: until interrupted.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on 127.0.0.1:PORT (0: any).",
)
@click.option(
    "--db", type=click.Path(dir_okay=False), default=None, help="The evidence log (default .recon/runtime.db)."
)
@click.option(
    "--heads/--no-heads",
    default=True,
    show_default=True,
    help="Publish the evidence chain's head to the archive bucket (every 1,000 records or 60 s, and at exit).",
)
@click.option("--heads-bucket", type=NAME, help="The ArchiveBucket (metadata.name) for heads; default: the only one.")
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Verify captures continuously against the CollectorTopology's CDRs (when one is declared).",
)
@click.option(
    "--alert-webhook",
    metavar="URL|env:NAME|file:PATH",
    default=None,
    help="Post alerts (Slack-compatible JSON) to this webhook; a reference keeps the URL out of shell history.",
)
@click.option(
    "--platform-writer",
    type=click.Choice(["process", "inline"]),
    default="process",
    show_default=True,
    help="Where the Genesys writes run: a child process (the snapshot path never waits behind them), "
    "or this process's event loop (one core, or where starting a process is not allowed).",
)
@with_vars
def runtime(
    paths: tuple[str, ...],
    once: bool,
    since: Duration,
    duration: Duration | None,
    metrics_port: int | None,
    db: str | None,
    heads: bool,
    heads_bucket: str | None,
    verify: bool,
    alert_webhook: str | None,
    platform_writer: str,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Stamp calls with the market data in force when they started (see `recon runtime --help`)."""
    handler = redact.filter_handler(logging.StreamHandler(sys.stderr))  # alert details are scrubbed too
    handler.setFormatter(JsonLines())
    logging.getLogger("reconciler.runtime").addHandler(handler)
    logging.getLogger("reconciler.runtime").setLevel(logging.INFO)
    try:
        ws = open_workspace(paths, variables(var_assignments, var_files), today=now_utc().date())
        path = Path(db) if db else ws.root / DEFAULT_DB
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(
            once, since, duration, metrics_port, heads, heads_bucket, verify, alert_webhook, platform_writer
        )
        outcome = run_async(_run(ws, path, options), loop_factory=loop_factory())
    except ReconError as error:
        fail(error)
        return
    stamped, failed, head, verifier = outcome.stamped, outcome.failed, outcome.head, outcome.verifier
    if ws.estate.of_kind("MarketDataFeed"):
        click.echo(
            f"{stamped} call(s) stamped: {stamped - failed} attached, {failed - outcome.dropped} data_fetch_failed, "
            f"{outcome.dropped} instruments_dropped; evidence in {path}"
        )
    if head is not None:
        click.echo(f"chain head seq {head.seq} ({head.hash[:16]}…) published to the archive bucket")
    gaps = 0
    if verifier is not None:
        gaps, totals = len(verifier.alerted), verifier.totals
        click.echo(
            f"capture verification ({verifier.plan.name}): {sum(totals.values()) + verifier.pending} call(s) checked, "
            f"{totals['verified']} verified, {totals['not_recorded']} not recorded, {totals['partial']} partial, "
            f"{totals['exempt']} exempt, {verifier.pending} pending; {gaps} gap(s) alerted"
        )
    sys.exit(EXIT_CHANGES if failed or gaps else EXIT_OK)
