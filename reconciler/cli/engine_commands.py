"""`recon plan`, `recon apply`, `recon show`: compute, execute and display plans.

    recon plan [PATHS] [-out plan.json] [--format text|json|markdown] [--prune] [--forget]
               [--detailed-exitcode]
    recon apply [plan.json | PATHS] [--auto-approve] [--allow-one-way] [--parallelism 10]
                [--lock-timeout 0s]
    recon show [--json] [plan.json]

Exit codes: 0 ok / no changes, 1 error, 2 changes (plan --detailed-exitcode), 3 blocked.

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from reconciler.cli.common import (
    DAY,
    LOCK_TIMEOUT,
    cli,
    fail,
    now_utc,
    run_async,
    variables,
    with_vars,
    write_output,
)
from reconciler.cli.estate_commands import print_state
from reconciler.cli.progress import ApplyProgress, note, status, use_color
from reconciler.cli.state_settings import s3_settings
from reconciler.cli.targets import providers_for, request_count, requests_by_platform, say_unmanaged
from reconciler.durations import Duration
from reconciler.engine.apply import DEFAULT_PARALLELISM, apply_checked
from reconciler.engine.plan import Plan, PlanFileError
from reconciler.engine.planner import PlanOptions, make_plan
from reconciler.engine.reports import ApplyResult
from reconciler.engine.workspace import (
    Workspace,
    describe_target,
    open_workspace,
    sources_from,
    sources_relative_to,
    state_backend,
)
from reconciler.errors import EXIT_BLOCKED, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ReconError, UsageError
from reconciler.providers.base import ProviderSet
from reconciler.render.apply_text import render_apply_text
from reconciler.render.plan_markdown import render_plan_markdown
from reconciler.render.plan_text import render_plan_json, render_plan_text
from reconciler.state.model import State


def render_plan(plan: Plan, output_format: str, plan_file: str | None) -> str:
    if output_format == "json":
        return render_plan_json(plan)
    if output_format == "markdown":
        command = f"recon apply {plan_file}" if plan_file else "recon apply"
        return render_plan_markdown(plan, apply_command=command)
    return render_plan_text(plan, color=use_color())


def _plan_now(
    ws: Workspace,
    providers: ProviderSet,
    state: State,
    prune: bool,
    forget: bool,
    paths: list[str],
    *,
    verbose: bool = False,
) -> Plan:
    label = f"Planning {len(ws.estate.resources)} resources against {describe_target(ws.project)}"
    options = PlanOptions(target=ws.target, prune=prune, forget=forget)
    say_unmanaged(ws)
    started, requests_before = time.monotonic(), request_count(providers)
    per_platform_before = requests_by_platform(providers)
    with status(label):
        plan = run_async(
            make_plan(
                ws.estate, ws.evaluation, state, providers, options, manifest_digest=ws.manifest_digest, now=now_utc()
            )
        )
    plan.sources = sources_relative_to(paths, ws.root)
    plan.root = str(ws.root)
    if verbose:
        requests = request_count(providers) - requests_before
        per_platform = [
            f"{platform} {count - per_platform_before.get(platform, 0)}"
            for platform, count in requests_by_platform(providers).items()
        ]
        split = f" ({', '.join(per_platform)})" if len(per_platform) > 1 else ""
        note(
            f"The plan read the platform with {requests} HTTP request(s){split} in {time.monotonic() - started:.2f} s."
        )
    return plan


def _close(providers: ProviderSet) -> None:
    run_async(providers.aclose())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-out", "--out", "out", type=click.Path(dir_okay=False), help="Save the plan for `recon apply FILE`.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="How to print the plan (markdown: a pull-request comment).",
)
@click.option("--prune", is_flag=True, help="Delete resources that were removed from the manifests.")
@click.option("--forget", is_flag=True, help="Stop managing removed ArchiveBuckets and LegalHolds (never deleted).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none.")
@click.option("--as-of", type=DAY, help="Evaluate waivers as of this date (YYYY-MM-DD).")
@click.option(
    "-v", "--verbose", is_flag=True, help="Also say how many HTTP requests the plan made, and how long it took."
)
@with_vars
def plan(
    paths: tuple[str, ...],
    out: str | None,
    output_format: str,
    prune: bool,
    forget: bool,
    detailed_exitcode: bool,
    as_of: dt.date | None,
    verbose: bool,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Show what apply would change. Never changes the estate or the state.

    Exit 0 (no changes, or changes without --detailed-exitcode), 2 changes with
    --detailed-exitcode, 3 blocked (forbidden change or error finding), 1 error.
    """
    try:
        ws = open_workspace(paths, variables(var_assignments, var_files), today=_today(as_of))
        providers = providers_for(ws.project, ws.root)
        try:
            state = state_backend(ws.project, ws.root, s3=s3_settings(ws.project, ws.root)).read()
            result = _plan_now(ws, providers, state, prune, forget, list(paths), verbose=verbose)
        finally:
            _close(providers)
    except ReconError as error:
        fail(error)
        return
    if out:
        try:
            write_output(out, result.dumps(), "plan")
        except ReconError as error:
            fail(error)
            return
    click.echo(render_plan(result, output_format, out), nl=False)
    if out:
        note(f"Saved the plan to {out}; apply exactly it with: recon apply {out}")
    if result.blocked:
        sys.exit(EXIT_BLOCKED)
    sys.exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)


def _today(as_of: dt.date | None) -> dt.date:
    return as_of if as_of else now_utc().date()


def _finish(result: ApplyResult) -> None:
    click.echo(render_apply_text(result, color=use_color()), nl=False)
    sys.exit(EXIT_OK if result.ok else EXIT_ERROR)


MANIFEST_SUFFIXES = (".yaml", ".yml", ".j2")


def _is_plan_file(paths: tuple[str, ...]) -> bool:
    """One argument naming a file that is not a manifest: a saved plan (any file name)."""
    return len(paths) == 1 and Path(paths[0]).is_file() and not paths[0].endswith(MANIFEST_SUFFIXES)


def read_plan_file(path: str) -> Plan:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(f"cannot read {path} as a recon plan file: {error}") from None
    return Plan.loads(text, source=path)


def _saved_plan_root(plan: Plan, plan_file: Path, project_dir: str | None) -> Path:
    """Where the project of a saved plan is: --project-dir; else the first of the current
    folder, the plan file's folder and the root recorded at plan time that holds all the
    plan's sources (and recon.yaml, when there is one); else the current folder."""
    if project_dir:
        return Path(project_dir).resolve()
    candidates = [Path.cwd(), plan_file.resolve().parent, *([Path(plan.root)] if plan.root else [])]
    for wants_project_file in (True, False):
        for candidate in candidates:
            if wants_project_file and not (candidate / "recon.yaml").is_file():
                continue
            if all((candidate / source).exists() for source in plan.sources):
                return candidate
    return Path.cwd()


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Apply without asking (pipelines).")
@click.option("--allow-one-way", is_flag=True, help="Allow changes that cannot be undone (e.g. enabling Object Lock).")
@click.option("--parallelism", type=click.IntRange(1, 256), default=DEFAULT_PARALLELISM, show_default=True)
@click.option(
    "--lock-timeout",
    type=LOCK_TIMEOUT,
    default="0s",
    show_default=True,
    help="How long to wait for the state lock (0s to 1h).",
)
@click.option("--prune", is_flag=True, help="Delete resources removed from the manifests (when planning here).")
@click.option("--forget", is_flag=True, help="Stop managing removed ArchiveBuckets/LegalHolds (when planning here).")
@click.option(
    "--project-dir", type=click.Path(file_okay=False), help="With a plan file: the project folder (default: found)."
)
@with_vars
def apply(
    paths: tuple[str, ...],
    auto_approve: bool,
    allow_one_way: bool,
    parallelism: int,
    lock_timeout: Duration,
    prune: bool,
    forget: bool,
    project_dir: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Converge the estate: apply a saved plan exactly (recon apply plan.json), or plan,
    show and ask first (recon apply [PATHS]).

    A saved plan is refused if the state or the manifests changed since it was made, if
    it expired (24 h) or if the file was edited. Exit 0 success, 1 error or failed
    resources, 3 blocked.
    """
    try:
        timeout = lock_timeout.seconds
        values = variables(var_assignments, var_files)
        saved: Plan | None = None
        if _is_plan_file(paths):
            if prune or forget:
                raise UsageError("--prune and --forget belong to `recon plan`; a saved plan already says what it does")
            saved = read_plan_file(paths[0])
            root = _saved_plan_root(saved, Path(paths[0]), project_dir)
            ws = open_workspace(sources_from(saved.sources, root), values, today=now_utc().date())
        else:
            ws = open_workspace(paths, values, today=now_utc().date())
        providers = providers_for(ws.project, ws.root)
        try:
            backend = state_backend(ws.project, ws.root, s3=s3_settings(ws.project, ws.root))
            with backend.lock("apply", timeout) as session:
                if saved is None:
                    the_plan = _plan_now(ws, providers, session.state, prune, forget, list(paths))
                    click.echo(render_plan_text(the_plan, color=use_color()), nl=False)
                    source = "the plan"
                    if not the_plan.blocked and not the_plan.has_changes:
                        return
                    if not the_plan.blocked and not auto_approve:
                        _confirm(ws)
                else:
                    the_plan, source = saved, paths[0]
                total = sum(c.changes_something for c in the_plan.changes)
                with ApplyProgress(total) as progress:
                    result = run_async(
                        apply_checked(
                            the_plan,
                            ws,
                            session,
                            providers,
                            now=now_utc(),
                            allow_one_way=allow_one_way,
                            recheck=saved is not None or not auto_approve,  # time passed since planning
                            parallelism=parallelism,
                            on_event=progress,
                            source=source,
                        )
                    )
        finally:
            _close(providers)
    except ReconError as error:
        fail(error)
        return
    _finish(result)


def _confirm(ws: Workspace) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            "recon apply needs confirmation, and stdin is not a terminal",
            next_step="review the plan, then run with --auto-approve (or save it: recon plan -out FILE)",
        )
    answer = click.prompt(
        f"Apply these changes to {describe_target(ws.project)}? Only 'yes' is accepted", default="", show_default=False
    )
    if answer.strip() != "yes":
        raise ReconError("apply cancelled; nothing was changed")


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON (docs/plan-format.md).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default=None)
@click.option(
    "--project-dir", type=click.Path(file_okay=False), default=".", show_default=True, help="Without PLAN_FILE."
)
def show(plan_file: str | None, as_json: bool, output_format: str | None, project_dir: str) -> None:
    """Show a saved plan (text, --json, or --format markdown), or without a file, the state."""
    chosen = "json" if as_json else (output_format or "text")
    try:
        if plan_file is None:
            print_state(project_dir, as_json=chosen == "json")
            return
        the_plan = read_plan_file(plan_file)
    except ReconError as error:
        fail(error)
        return
    click.echo(render_plan(the_plan, chosen, plan_file), nl=False)
    sys.exit(EXIT_BLOCKED if the_plan.blocked else EXIT_OK)
