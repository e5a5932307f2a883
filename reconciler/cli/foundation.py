"""The foundation commands: validate, schema, rules, render, kinds. None of them talks to
a live estate or to state.

Called by: reconciler.cli (registers them on the group).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from reconciler.cli.common import DAY, cli, fail, variables, with_vars, write_output
from reconciler.errors import EXIT_ERROR, EXIT_OK, InputError, ReconError
from reconciler.manifest.kinds import KINDS
from reconciler.manifest.loader import load_estate
from reconciler.manifest.render_worker import RenderBatch, TemplateJob
from reconciler.manifest.schema import schema_files
from reconciler.manifest.source import discover, display_path, is_template
from reconciler.policy import RULES, evaluate
from reconciler.render.report import ValidationReport, render_json, render_text
from reconciler.render.sarif import render_sarif


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the report to a file instead of stdout.",
)
@click.option(
    "--as-of",
    "as_of",
    type=DAY,
    help="Evaluate waiver expiry as of this date (default: today, UTC).",
)
@with_vars
def validate(
    paths: tuple[str, ...],
    output_format: str,
    output: str | None,
    as_of: dt.date | None,
    var_assignments: tuple[str, ...],
    var_files: tuple[str, ...],
) -> None:
    """Check manifests and compliance rules. Changes nothing.

    Exit 0 clean (warnings allowed), 1 input errors, 3 error-severity findings.
    """
    today = as_of if as_of else dt.datetime.now(dt.UTC).date()
    report = ValidationReport(as_of=today)
    try:
        values = variables(var_assignments, var_files)
        result = load_estate(list(paths) or ["."], values)
    except InputError as error:
        report.diagnostics = error.diagnostics
        report.files = error.files
        report.references_checked = error.references_checked
    except ReconError as error:
        fail(error)
        return
    else:
        report.files = result.estate.files
        report.resources = len(result.estate.resources)
        evaluation = evaluate(result.estate, today)
        report.diagnostics = evaluation.diagnostics
        report.findings = evaluation.findings
        report.waived = evaluation.waived
    renderer = {"text": render_text, "json": render_json, "sarif": render_sarif}[output_format]
    text = renderer(report)
    if output:
        try:
            write_output(output, text, f"{output_format} report")
        except ReconError as error:
            fail(error)
            return
        click.echo(f"wrote {output_format} report to {output} ({report.status})", err=True)
    else:
        click.echo(text, nl=False)
    sys.exit(report.exit_code)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="schemas",
    show_default=True,
    help="Folder the schemas are written to.",
)
@click.option("--check", is_flag=True, help="Fail (exit 1) if the files in --out are not up to date.")
def schema(out_dir: str, check: bool) -> None:
    """Write one JSON Schema per kind (and the project file) for editors and CI."""
    target = Path(out_dir)
    files = schema_files()
    if check:
        stale = [
            name
            for name, text in files.items()
            if not (target / name).is_file() or (target / name).read_text(encoding="utf-8") != text
        ]
        extra = sorted(p.name for p in target.glob("*.schema.json") if p.name not in files) if target.is_dir() else []
        if stale or extra:
            for name in stale:
                click.echo(f"stale or missing: {target / name}", err=True)
            for name in extra:
                click.echo(f"no longer generated: {target / name}", err=True)
            click.echo("error: schemas are out of date; run `recon schema` and commit the result", err=True)
            sys.exit(EXIT_ERROR)
        click.echo(f"{len(files)} schemas in {target} are up to date")
        return
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    for old in target.glob("*.schema.json"):
        if old.name not in files:
            old.unlink()
    click.echo(f"wrote {len(files)} schemas to {target}")


@cli.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def rules(output_format: str) -> None:
    """List every compliance rule: id, severity and what it checks."""
    if output_format == "json":
        items = [
            {
                "id": r.id,
                "pack": r.pack,
                "severity": str(r.severity),
                "title": r.title,
                "remediation": r.remediation,
                "citation": r.citation,
            }
            for r in RULES.values()
        ]
        click.echo(json.dumps(items, indent=2))
        return
    width = max(len(r.id) for r in RULES.values())
    for rule in RULES.values():
        click.echo(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.title}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@with_vars
def render(paths: tuple[str, ...], var_assignments: tuple[str, ...], var_files: tuple[str, ...]) -> None:
    """Print the rendered text of *.yaml.j2 templates (line numbers in errors refer to it)."""
    try:
        values = variables(var_assignments, var_files)
    except ReconError as error:
        fail(error)
        return
    templates = [p for p in discover(list(paths) or ["."]).manifests if is_template(p)]
    failed = False
    # Rendered in a child process with CPU, memory and time limits, like every load.
    with RenderBatch([TemplateJob(path=p) for p in templates], values, line_maps=False) as batch:
        for path, result in zip(templates, batch, strict=True):
            shown = display_path(path)
            if result.problem is not None:
                click.echo(result.problem.diagnostic(shown).render(), err=True)
                failed = True
                continue
            click.echo(f"# --- {shown} (rendered)")
            for number, line in enumerate(result.text.splitlines(), start=1):
                click.echo(f"{number:>5}  {line}")
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


@cli.command()
def kinds() -> None:
    """List the manifest kinds."""
    width = max(len(k) for k in KINDS)
    for info in KINDS.values():
        click.echo(f"{info.name:<{width}}  {info.summary}")
