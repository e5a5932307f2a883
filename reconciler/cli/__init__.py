"""The `recon` command line. Click commands only: parse arguments, call the layers below,
print, and exit with the documented code:

    0 success / no changes / no findings at error severity      1 error (bad input, usage)
    2 changes present (plan/drift with --detailed-exitcode; drift always)
    3 blocked: error-severity compliance findings or a forbidden change

Modules: common (group, shared options), foundation (validate, schema, rules, render,
kinds), engine_commands (plan, apply, show), estate_commands (drift, state, import,
export, force-unlock), progress (live display on a TTY, plain lines in CI).

Called by: the `recon` console script and `python -m reconciler`.
"""

from __future__ import annotations

from reconciler.cli import engine_commands, estate_commands, foundation
from reconciler.cli.common import cli

__all__ = ["cli", "engine_commands", "estate_commands", "foundation", "main"]


def main() -> None:
    cli(prog_name="recon")
