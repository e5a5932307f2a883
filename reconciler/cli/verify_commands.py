"""`recon verify`: prove every trading call was recorded, for a period.

    recon verify [PATHS] --from DAY --to DAY [--topology NAME] [--no-poll] [--db PATH]
                 [--format text|json|csv|markdown|html] [-o FILE] [--var ...]

For the CollectorTopology in the manifests (or `--topology`): polls every collector until its
TradeSense server has nothing more (an HA pair's two members are then compared over the
period: a pair serving different CDRs is a misconfiguration the report names) (CDRs and cursors are kept in `.recon/runtime.db`, so the
next run resumes; `--no-poll` uses only what is stored), reads the recordings of the traders'
calls from the target's Genesys org, matches them (reconciler.runtime.verification), applies
the reviewers' triage tags (`recon triage`) and prints the report: text (default), JSON, CSV
(one row per finding), or a Markdown/HTML summary with a per-desk compliance gauge.

The period is UTC days, inclusive. Calls whose late-recording grace has not passed yet are
`pending`, not gaps: run it again later, or for a period that ended more than the grace ago.

Exit codes: 0 every desk meets the target and no finding is left untriaged; 3 a critical
finding (a call not recorded) is untriaged, or the total or a desk is below target; 2 only
major/minor findings are untriaged, or a collector could not be read completely (the report
says which); 1 an error.

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from reconciler.cli.collector_targets import TopologyTarget, queue_members, topologies, topology_target
from reconciler.cli.common import (
    DAY,
    MAX_PERIOD_DAYS,
    NAME,
    check_period,
    cli,
    fail,
    now_utc,
    run_async,
    variables,
    with_vars,
    write_output,
)
from reconciler.cli.targets import genesys_client
from reconciler.dates import day_end, day_start
from reconciler.engine.workspace import Workspace, open_workspace
from reconciler.errors import ReconError, UsageError
from reconciler.runtime.sqlite_store import DEFAULT_DB
from reconciler.runtime.verification.batch import TopologyPlan, build_report_and_pairs, catch_up
from reconciler.runtime.verification.collector import collectors_from_spec
from reconciler.runtime.verification.cursor_store import CursorStore
from reconciler.runtime.verification.model import to_ms
from reconciler.runtime.verification.platform import PlatformRecordings
from reconciler.runtime.verification.report import SourceStatus, VerificationReport
from reconciler.runtime.verification.report_render import RENDERERS
from reconciler.runtime.verification.triage import TriageStore


async def verify_period(
    ws: Workspace, target: TopologyTarget, db: Path, period: tuple[dt.date, dt.date], *, poll: bool
) -> VerificationReport:
    """Poll, read the platform, match and report (see the module docstring)."""
    plan = TopologyPlan.from_spec(target.name, target.spec, queue_members(ws))
    start, end = day_start(period[0]), day_end(period[1])
    store = CursorStore(db)
    alerts: list[tuple[str, str]] = []
    sources: list[SourceStatus] = []
    warnings: list[str] = []
    try:
        if poll:
            collectors = collectors_from_spec(
                target.spec, target.resolve, store, alert=lambda kind, detail: alerts.append((kind, detail))
            )
            for collector in collectors:
                try:
                    status = await catch_up(collector, alerts)
                    if status.ok and len(collector.members) > 1:
                        # An HA pair must serve the same CDRs: compare the members over the period.
                        ha = await collector.compare_members(to_ms(start), min(to_ms(end), to_ms(now_utc())))
                        if ha is not None and not ha.matches:
                            status = SourceStatus(
                                collector.name,
                                False,
                                0,
                                f"ha_mismatch: primary {ha.primary} CDRs, secondary {ha.secondary}; "
                                f"{len(ha.only_primary)} only on primary, {len(ha.only_secondary)} only on "
                                f"secondary, {len(ha.differing)} differing: check both servers read the same "
                                "switch and traders",
                            )
                    sources.append(status)
                finally:
                    await collector.close()
        else:
            sources = [SourceStatus(c, True, 0, "not polled (--no-poll): stored CDRs") for c in plan.collectors]
        margin = dt.timedelta(milliseconds=plan.margin_ms)
        cdrs = [
            c for c in store.cdrs(None, to_ms(start - margin), to_ms(end + margin)) if c.collector in plan.collectors
        ]
        anomalies = store.anomalies(None, to_ms(start), to_ms(end))
        client, _ = genesys_client(ws.project, ws.root)
        try:
            recordings = await PlatformRecordings(client, plan.traders_by_user).recordings(start - margin, end + margin)
        finally:
            await client.aclose()
    finally:
        store.close()
    with TriageStore(db) as triage_store:
        triage = triage_store.current()
    now = now_utc()
    if end > now - dt.timedelta(milliseconds=plan.tolerances.grace_ms):
        warnings.append(
            "the period ends within the late-recording grace: calls without a recording yet are pending; "
            "run again after the grace for the final figures"
        )
    report, _ = build_report_and_pairs(
        plan,
        cdrs,
        recordings,
        period=(to_ms(start), to_ms(end)),
        now_ms=to_ms(now),
        triage=triage,
        sources=sources,
        labels=(period[0].isoformat(), period[1].isoformat()),
        warnings=warnings,
        anomalies=anomalies,
    )
    return report


@cli.command("verify")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--from", "first", type=DAY, required=True, help="First day (UTC) of calls to verify.")
@click.option("--to", "last", type=DAY, required=True, help="Last day (UTC), inclusive.")
@click.option(
    "--topology", type=NAME, default=None, help="The CollectorTopology (metadata.name); default: the only one."
)
@click.option("--no-poll", is_flag=True, help="Do not poll the collectors; use the CDRs already stored.")
@click.option("--db", type=click.Path(dir_okay=False), default=None, help=f"The runtime store (default {DEFAULT_DB}).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
    help="text, json, csv (one row per finding), markdown or html (summary with the per-desk gauge).",
)
@click.option("-o", "output", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@with_vars
def verify_command(
    paths: tuple[str, ...],
    first: dt.date,
    last: dt.date,
    topology: str | None,
    no_poll: bool,
    db: str | None,
    output_format: str,
    output: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Verify that every call the trading switch saw was recorded (see `recon verify --help`)."""
    try:
        if last < first:
            raise UsageError("--to is before --from", next_step="give the period's first and last day")
        check_period(first, last, max_days=MAX_PERIOD_DAYS)
        ws = open_workspace(paths, variables(var_assignments, var_files), today=now_utc().date())
        found = topologies(ws, topology)
        if len(found) > 1:
            raise UsageError(
                f"{len(found)} CollectorTopology manifests are declared ({', '.join(n for n, _ in found)})",
                next_step="name one with --topology",
            )
        name, spec = found[0]
        target = topology_target(ws, name, spec)
        path = Path(db) if db else ws.root / DEFAULT_DB
        report = run_async(verify_period(ws, target, path, (first, last), poll=not no_poll))
        text = RENDERERS[output_format](report)
        if output:
            write_output(output, text, "verification report")
            click.echo(f"report written to {output}", err=True)
        else:
            click.echo(text, nl=not text.endswith("\n"))
    except ReconError as error:
        fail(error)
        return
    sys.exit(report.exit_code())
