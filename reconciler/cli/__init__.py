"""The `recon` command line. Click commands only: parse arguments, call the layers below,
print, and exit with the documented code:

    0 success / no changes / no findings at error severity      1 error (bad input, usage)
    2 changes present (plan/drift with --detailed-exitcode; drift always); archive gaps
    3 blocked: error-severity compliance findings or a forbidden change

Modules: common (group, shared options), foundation (validate, schema, rules, render,
kinds), engine_commands (plan, apply, show), estate_commands (drift, state, import,
export, force-unlock), archive_commands (verify-archive: exit 2 on any gap),
evidence_commands (evidence verify / show: the runtime's hash-chained log; exit 2 when
tampered), runtime_commands (runtime: stamp calls), search_commands (search: the
auditor's query over stamped snapshots; exit 2 on a tampered document), triage_commands
(triage set / clear / list: reviewers' tags on capture-verification findings),
verify_commands (verify: CDRs against recordings for a period; exit 3 below target or an
untriaged critical gap, 2 other findings), sandbox_commands (the embedded estate), progress (live
display on a TTY, plain lines in CI).

Called by: the `recon` console script and `python -m reconciler`.
"""

from __future__ import annotations

import sys

import click

from reconciler import redact
from reconciler.cli import (
    archive_commands,
    engine_commands,
    estate_commands,
    evidence_commands,
    foundation,
    runtime_commands,
    sandbox_commands,
    search_commands,
    triage_commands,
    verify_commands,
)
from reconciler.cli.common import cli
from reconciler.errors import EXIT_ERROR

__all__ = [
    "archive_commands",
    "cli",
    "engine_commands",
    "estate_commands",
    "evidence_commands",
    "foundation",
    "main",
    "runtime_commands",
    "sandbox_commands",
    "search_commands",
    "triage_commands",
    "verify_commands",
]


def main() -> None:
    """Run the command line. click's own usage errors (unknown flag, bad value) exit 1, not
    click's default 2, which recon reserves for "changes present". Output is scrubbed of
    every secret recon holds (reconciler.redact) from the first byte."""
    redact.install()
    try:
        cli.main(prog_name="recon", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_ERROR)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
