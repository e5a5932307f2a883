"""The recon exception tree. Every error recon raises on purpose is one of these.

    ReconError                  base; carries the process exit code and a next step
    ├── InputError              bad manifests, project file or variables (exit 1);
    │                           carries every Diagnostic of the run, not just the first
    └── UsageError              a command was called wrongly (bad flag value, missing path)

Later layers add their own branches here (compliance-blocked, state, lock, provider, plan) so that the CLI can
map any ReconError to its exit code and message without knowing where it came from.
Messages say what happened and what to do next; they never contain secret values.

Called by: every layer. Imports nothing from the package except diagnostics.
"""

from __future__ import annotations

from reconciler.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BLOCKED = 3


class ReconError(Exception):
    """Base of every deliberate recon error. `exit_code` is what the CLI exits with."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, next_step: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step

    def __str__(self) -> str:
        if self.next_step:
            return f"{self.message}\n  next: {self.next_step}"
        return self.message


class InputError(ReconError):
    """The user's input is wrong. Holds all diagnostics found in the run (never empty)."""

    def __init__(
        self,
        diagnostics: list[Diagnostic],
        *,
        files: list[str] | None = None,
        references_checked: bool = True,
    ) -> None:
        count = len(diagnostics)
        noun = "error" if count == 1 else "errors"
        super().__init__(
            f"{count} input {noun}",
            next_step="fix the errors listed above; nothing was changed",
        )
        self.diagnostics = diagnostics
        self.files = files or []
        self.references_checked = references_checked


class UsageError(ReconError):
    """A command was called with arguments that cannot work (e.g. `--var` without `=`)."""
