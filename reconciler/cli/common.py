"""Shared pieces of the command line: the click group, --var options, error printing,
report files, and the one parser of each kind of option value.

Every command's output passes reconciler.redact: the group installs the scrubbing streams and
log filter before any command runs, and `write_output` scrubs the files it writes, so a
secret a server echoed back never reaches a terminal, a CI log or a report.

Every option that takes a number, a duration or a date is parsed by a type here, with
bounds, so a bad value is refused before the command does anything (click's usage error,
naming the option; `recon` exits 1): `DurationOption(low, high)` (`--since`, `--duration`,
`--lock-timeout`, `--ago`), `DayOption` (`--from`, `--to`, `--as-of`: YYYY-MM-DD within
reconciler.dates' bounds, so a day after `--to` always exists), `FiniteFloat` (rates and
shares: nan and inf are not numbers here; click's FloatRange lets nan through), and click's
IntRange for integers, always with both bounds. `check_period` checks a --from/--to pair.

Called by: reconciler.cli.* command modules.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import math
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__, redact
from reconciler.dates import parse_day
from reconciler.durations import Duration, between
from reconciler.errors import InputError, ReconError, UsageError
from reconciler.manifest.kinds import text
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
    redact.forget()
    redact.install()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DurationOption(click.ParamType[Duration]):
    """A duration option (e.g. 30s, 10m) from `low` to `high` inclusive."""

    name = "duration"

    def __init__(self, low: Duration, high: Duration) -> None:
        self.low, self.high = low, high
        self._check = between(low, high)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Duration:
        if isinstance(value, Duration):
            return value
        try:
            return self._check(Duration.parse(value))
        except ValueError as error:
            self.fail(f"{error}", param, ctx)


class DayOption(click.ParamType[dt.date]):
    """A day option, YYYY-MM-DD, within reconciler.dates' bounds."""

    name = "date"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return parse_day(value)
        except ValueError as error:
            self.fail(f"{error}", param, ctx)


class FiniteFloat(click.ParamType[float]):
    """A number from `low` to `high` inclusive; nan and inf are refused."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not a number from {self.low:g} to {self.high:g}", param, ctx)
        return number


class Checked(click.ParamType[str]):
    """Text checked by one of reconciler.manifest.kinds.text's checks (a name, an address,
    an id, one line of text): what it looks like is what it is."""

    def __init__(self, check: Callable[[str], str], metavar: str) -> None:
        self.check, self.name = check, metavar.lower()
        self.metavar = metavar

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self.check(value)
        except ValueError as error:
            self.fail(f"{error}", param, ctx)


NAME = Checked(text.check_name, "NAME")
"""A resource's metadata.name (--bucket, --topology, --heads-bucket)."""
ADDRESS = Checked(text.check_address, "KIND/NAME")
OBJECT_ID = Checked(text.check_object_id, "ID")
ONE_LINE = Checked(text.line_check("text"), "TEXT")
PROSE = Checked(text.check_prose, "TEXT")

LOCK_TIMEOUT = DurationOption(Duration(0, "s"), Duration(1, "h"))
"""--lock-timeout: how long to wait for the state lock (0s to 1h)."""
DAY = DayOption()
SHARE = FiniteFloat(0, 1)
"""A share of calls or requests, 0 to 1."""
MAX_PERIOD_DAYS = 366
"""The longest --from/--to period a command that reads every call or recording accepts."""


def check_period(
    first: dt.date | None, last: dt.date | None, *, max_days: int | None = None, names: str = "--from/--to"
) -> None:
    """UsageError unless `first` <= `last` and, with `max_days`, the period is that short."""
    if first is not None and last is not None:
        if first > last:
            raise UsageError(f"--from {first} is after --to {last}", next_step="swap them")
        days = (last - first).days + 1
        if max_days is not None and days > max_days:
            raise UsageError(
                f"{names}: the period is {days:,} days, longer than the {max_days} days one run reads",
                next_step=f"split it into periods of at most {max_days} days",
            )


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
