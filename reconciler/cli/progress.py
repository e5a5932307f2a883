"""Progress for long commands: a live bar on a terminal, plain lines in CI and pipes.

All progress goes to stderr so stdout stays the plan or report (`recon plan --format
markdown > comment.md` works with progress on). `rich` draws the bar; it is imported only
when stderr is a terminal, so CI runs never pay for it.

Called by: reconciler.cli.engine_commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any

import click

from reconciler.engine.apply import ApplyEvent
from reconciler.engine.reports import Outcome
from reconciler.providers.base import Action

_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
    Action.FORGET: "forgotten",
    Action.NOOP: "recorded",
}


def interactive() -> bool:
    """True on a terminal outside CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def use_color() -> bool:
    """Colours on stdout: only on a terminal, never with NO_COLOR set (no-color.org)."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def note(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def status(label: str) -> Iterator[None]:
    """A spinner with `label` while the block runs (terminal), else one plain line first."""
    if not interactive():
        note(f"{label}...")
        yield
        return
    from rich.console import Console  # noqa: PLC0415 - only terminals pay for rich

    with Console(stderr=True).status(label):
        yield
    note(f"{label}: done")


class ApplyProgress(AbstractContextManager["ApplyProgress"]):
    """Receives ApplyEvents; draws a bar (TTY) or prints one line per finished resource."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ApplyProgress:
        if interactive() and self.total:
            from rich.progress import (  # noqa: PLC0415 - only terminals pay for rich
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]applying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, traceback)

    def __call__(self, event: ApplyEvent) -> None:
        if event.phase != "done":
            if self._bar is not None:
                self._bar.update(self._task, description=f"{event.action.value} {event.address}")
            return
        self.finished += 1
        if self._bar is not None:
            self._bar.advance(self._task)
            if event.outcome is Outcome.SUCCEEDED:
                return
        if event.outcome is Outcome.SUCCEEDED:
            line = f"{event.address}: {_PAST[event.action]}"
        else:
            line = f"{event.address}: {event.action.value} {event.outcome}: {event.message}"
        prefix = f"[{self.finished}/{self.total}] "
        if self._bar is not None:
            self._bar.console.print(prefix + line, markup=False, highlight=False)
        else:
            note(prefix + line)
