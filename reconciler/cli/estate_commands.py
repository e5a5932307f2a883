"""Commands about the live estate and recon's record of it:

    recon drift [PATHS] [--format text|json|markdown] [-o FILE]   exit 2 when drift found
    recon state list | recon state show ADDRESS                   what recon recorded
    recon import KIND/NAME ID [PATHS]                             adopt one live object
    recon export DIR                                              manifests for the estate now
    recon force-unlock LOCK_ID                                    remove a stuck state lock

Commands that need only the project (state, export, force-unlock) read `recon.yaml` from
--project-dir and never load the manifests, so they work while the manifests are broken.

Called by: reconciler.cli (registered on the group at import).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.cli.common import (
    ADDRESS,
    LOCK_TIMEOUT,
    OBJECT_ID,
    cli,
    fail,
    now_utc,
    run_async,
    variables,
    with_vars,
    write_output,
)
from reconciler.cli.progress import note, use_color
from reconciler.cli.state_settings import s3_settings
from reconciler.cli.targets import providers_for
from reconciler.diagnostics import DiagnosticList
from reconciler.durations import Duration
from reconciler.engine.drift import detect_drift
from reconciler.engine.onboard import (
    discover_all,
    export_documents,
    import_resource,
    named_as_managed,
    not_exportable,
    write_export,
)
from reconciler.engine.workspace import describe_target, open_workspace, state_backend
from reconciler.errors import EXIT_CHANGES, EXIT_OK, InputError, ReconError, UsageError
from reconciler.manifest.project import Project, load_project
from reconciler.render.drift import render_drift_json, render_drift_markdown, render_drift_text
from reconciler.state.model import ResourceState

PROJECT_FILE = "recon.yaml"

_project_dir = click.option(
    "--project-dir",
    "project_dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The folder holding recon.yaml.",
)


def project_at(directory: str) -> tuple[Project, Path]:
    """The project file in `directory` (defaults when there is none), and the root."""
    root = Path(directory).resolve()
    path = root / PROJECT_FILE
    if not path.is_file():
        return Project(), root
    problems = DiagnosticList()
    project = load_project(path, str(Path(directory) / PROJECT_FILE), problems)
    if project is None:
        raise InputError(problems.sorted())
    return project, root


def _state_line(resource: ResourceState) -> str:
    status = "ok"
    if resource.pending is not None:
        status = (
            f"{resource.pending.action} failed: {resource.pending.message}"
            if resource.pending.message
            else (f"{resource.pending.action} in doubt (interrupted); the next plan checks the platform")
        )
    return f"{resource.address}  id={resource.id or '-'}  {status}"


def print_state(directory: str, *, as_json: bool) -> None:
    project, root = project_at(directory)
    backend = state_backend(project, root, s3=s3_settings(project, root))
    state = backend.read()
    if as_json:
        click.echo(json.dumps(state.to_json(), indent=2))
        return
    click.echo(f"# state {backend.description}: lineage {state.lineage}, serial {state.serial}")
    for resource in sorted(state.resources.values(), key=lambda r: r.address):
        click.echo(_state_line(resource))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to a file.")
@with_vars
def drift(
    paths: tuple[str, ...],
    output_format: str,
    output: str | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Compare the live estate with what recon last applied and with the manifests.

    Says which side moved. Exit 0 no drift, 2 drift found, 1 error. Changes nothing.
    """
    try:
        ws = open_workspace(paths, variables(var_assignments, var_files), today=now_utc().date())
        providers = providers_for(ws.project, ws.root)
        try:
            state = state_backend(ws.project, ws.root, s3=s3_settings(ws.project, ws.root)).read()
            report = run_async(detect_drift(ws.estate, state, providers, target=ws.target, now=now_utc()))
        finally:
            run_async(providers.aclose())
    except ReconError as error:
        fail(error)
        return
    if output_format == "json":
        text = render_drift_json(report)
    elif output_format == "markdown":
        text = render_drift_markdown(report, estate_name=ws.project_file or str(ws.root))
    else:
        text = render_drift_text(report, color=use_color() and not output)
    if output:
        try:
            write_output(output, text, "drift report")
        except ReconError as error:
            fail(error)
            return
        note(f"wrote the drift report to {output}")
    else:
        click.echo(text, nl=False)
    sys.exit(EXIT_CHANGES if report.has_drift else EXIT_OK)


@cli.group()
def state() -> None:
    """Inspect recon's state (what it last applied)."""


@state.command("list")
@_project_dir
@click.option("--json", "as_json", is_flag=True, help="The whole state document.")
def state_list(project_dir: str, as_json: bool) -> None:
    """One line per resource: address, platform id, status."""
    try:
        print_state(project_dir, as_json=as_json)
    except ReconError as error:
        fail(error)


@state.command("show")
@click.argument("address", type=ADDRESS)
@_project_dir
def state_show(address: str, project_dir: str) -> None:
    """Everything recon recorded about one resource, as JSON."""
    try:
        project, root = project_at(project_dir)
        current = state_backend(project, root, s3=s3_settings(project, root)).read()
        resource = current.resources.get(address)
        if resource is None:
            raise UsageError(f"{address} is not in the state", next_step="`recon state list` shows what is")
    except ReconError as error:
        fail(error)
        return
    click.echo(json.dumps(resource.to_json(), indent=2))


@cli.command("import")
@click.argument("address", type=ADDRESS)
@click.argument("object_id", type=OBJECT_ID)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--lock-timeout",
    type=LOCK_TIMEOUT,
    default="0s",
    show_default=True,
    help="How long to wait for the state lock (0s to 1h).",
)
@with_vars
def import_command(
    address: str,
    object_id: str,
    paths: tuple[str, ...],
    lock_timeout: Duration,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Record the live object OBJECT_ID as the declared resource ADDRESS (KIND/NAME).

    Changes nothing on the platform; the next plan shows how it differs from the manifests.
    """
    try:
        ws = open_workspace(paths, variables(var_assignments, var_files), today=now_utc().date())
        timeout = lock_timeout.seconds
        providers = providers_for(ws.project, ws.root)
        try:
            with state_backend(ws.project, ws.root, s3=s3_settings(ws.project, ws.root)).lock(
                "import", timeout
            ) as session:
                recorded = run_async(import_resource(session, providers, ws.estate, address, object_id))
        finally:
            run_async(providers.aclose())
    except ReconError as error:
        fail(error)
        return
    click.echo(f"Imported {recorded.address} (id {recorded.id}). Run `recon plan` to see how it differs.")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@_project_dir
def export(directory: str, project_dir: str) -> None:
    """Write manifests for everything the target has now (onboarding an existing org).

    One file per kind in DIRECTORY; existing files are never overwritten. Objects recon
    already manages keep their names from state. Review them, then `recon plan` adopts the
    existing objects instead of creating them again.
    """
    try:
        project, root = project_at(project_dir)
        providers = providers_for(project, root)
        try:
            found = run_async(discover_all(providers))
        finally:
            run_async(providers.aclose())
        found = named_as_managed(found, state_backend(project, root, s3=s3_settings(project, root)).read(), providers)
        files = export_documents(found, providers, target=project.target)
        skipped = not_exportable(providers)
        written = write_export(Path(directory), files)
    except ReconError as error:
        fail(error)
        return
    count = sum(len(objects) for objects in found.values())
    click.echo(f"Exported {count} resources from {describe_target(project)} into {len(written)} files:")
    for path in written:
        click.echo(f"  {path}")
    if skipped:
        click.echo(
            f"Not exported: {', '.join(skipped)}. What the platform holds for them is not a whole manifest "
            "(whether a queue is regulated, a hold's matter); declare them by hand, and `recon plan` adopts "
            "the existing objects by name.",
            err=True,
        )


@cli.command("force-unlock")
@click.argument("lock_id", type=OBJECT_ID)
@_project_dir
def force_unlock(lock_id: str, project_dir: str) -> None:
    """Remove the state lock LOCK_ID left by a process that is gone.

    Only when you are sure the holder is not running: its writes would no longer be fenced.
    """
    try:
        project, root = project_at(project_dir)
        info = state_backend(project, root, s3=s3_settings(project, root)).force_unlock(lock_id)
    except ReconError as error:
        fail(error)
        return
    click.echo(f"Removed lock {info.id} held by {info.owner}@{info.host} (pid {info.pid}) for {info.operation}.")
