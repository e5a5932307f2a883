"""Shared fixtures: paths to the repo's example estates and a runner for the real `recon`
console script (a subprocess, exactly as a user or pipeline calls it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "manifests" / "examples"
AS_OF = "2026-11-21"

Recon = Callable[..., subprocess.CompletedProcess[str]]


def _recon_command() -> list[str]:
    script = Path(sys.executable).with_name("recon")
    if script.exists():
        return [str(script)]
    found = shutil.which("recon")
    return [found] if found else [sys.executable, "-m", "reconciler"]


@pytest.fixture
def recon(tmp_path: Path) -> Recon:
    """Run `recon ARGS...` in `cwd` (default: a fresh temporary folder); never raises on exit codes."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_recon_command(), *args],
            cwd=cwd or tmp_path,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture(autouse=True, scope="session")
def _state_home_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keys recon keeps outside a project (the sandbox state's MAC key under
    $XDG_STATE_HOME/recon/) go to a folder of this run, never the real home: set in the
    environment, so the `recon` subprocesses and sandbox daemons inherit it."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture(autouse=True)
def _no_secret_outlives_its_test() -> Iterator[None]:
    """Secrets registered for redaction by one test (through library calls, not only the
    CLI, which starts each command with none) are not scrubbed from the next test's output."""
    yield
    from reconciler import redact  # noqa: PLC0415

    redact.forget()


@pytest.fixture(autouse=True)
def _no_sandbox_outlives_its_test(tmp_path: Path) -> Iterator[None]:
    """Commands that need an estate start the embedded sandbox daemon on demand; stop every
    daemon a test started under its temporary folder, so none outlives the test."""
    yield
    from reconciler.sandbox.process import down  # noqa: PLC0415

    for endpoints in tmp_path.glob("**/.recon/sandbox/endpoints.json"):
        down(endpoints.parent)
