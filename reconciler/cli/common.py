"""Shared pieces of the command line: the click group, --var options, error printing,
report files.

Every command's output passes reconciler.redact: the group installs the scrubbing streams and
log filter before any command runs, and `write_output` scrubs the files it writes, so a
secret a server echoed back never reaches a terminal, a CI log or a report.

Called by: reconciler.cli.* command modules.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__, redact
from reconciler.durations import Duration
from reconciler.errors import InputError, ReconError, UsageError
from reconciler.manifest.variables import load_var_files, parse_assignments

_var_options = [
    click.option(
        "--var",
        "var_assignments",
        multiple=True,
        metavar="KEY=VALUE",
        help="A template variable (repeatable).",
    ),
    click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="A YAML/JSON map of template variables (repeatable; --var wins).",
    ),
]


CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])
T = TypeVar("T")


def with_vars(function: CommandFunction) -> CommandFunction:
    """Add --var and --var-file to a command."""
    for option in reversed(_var_options):
        function = option(function)
    return function


def variables(assignments: Sequence[str], files: Sequence[str]) -> dict[str, object]:
    variables = load_var_files(files)
    variables.update(parse_assignments(assignments))
    return variables


def fail(error: ReconError) -> None:
    if isinstance(error, InputError):
        for diagnostic in error.diagnostics:
            click.echo(redact.scrub(diagnostic.render()), err=True)
    click.echo(redact.scrub(f"error: {error}"), err=True)
    sys.exit(error.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="recon")
def cli() -> None:
    """recon: recording compliance as code for trading desks."""
    redact.install()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lock_seconds(text: str) -> float:
    """--lock-timeout: a duration such as 0s, 30s, 5m."""
    try:
        return Duration.parse(text).milliseconds / 1000
    except ValueError as error:
        raise UsageError(f"--lock-timeout: {error}", next_step="write e.g. --lock-timeout 30s") from None


def write_output(path: str, text: str, what: str) -> None:
    """Write `text` to `path` atomically, or raise a ReconError that says why not. Secrets
    recon holds are scrubbed first (a note on stderr says so when there were any)."""
    scrubbed = redact.scrub(text)
    if scrubbed != text:
        click.echo(
            f"note: a secret recon holds was echoed by a server and is redacted in the {what} ({path})", err=True
        )
        text = scrubbed
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    except OSError as error:
        raise UsageError(f"cannot write the {what} to {path}: {error.strerror or error}") from None


_RUNNERS: list[asyncio.Runner] = []


def run_async(
    coroutine: Coroutine[Any, Any, T], *, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> T:
    """Run `coroutine` on the command's one event loop.

    A command may plan, ask, apply and close in separate steps; providers hold connection
    pools and locks bound to the loop they first ran on, so every step must share it.
    `loop_factory` makes that loop when the command's first step runs (`recon runtime`: uvloop)."""
    if not _RUNNERS:
        _RUNNERS.append(asyncio.Runner(loop_factory=loop_factory))
        atexit.register(_RUNNERS[0].close)
    return _RUNNERS[0].run(coroutine)
