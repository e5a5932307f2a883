"""The secret-free guard: nothing that looks like a credential is ever written to state.

State files end up in backups, CI artifacts and bug reports, so recon refuses to write a
journal record or a snapshot containing a private key, an AWS access key id, a Slack or
GitHub token or a JWT — the same patterns the manifest loader rejects (reused from
reconciler.manifest.secrets_scan). The offending value is never repeated in the message (a key that looks like a secret is
shown as "<redacted>").

Called by: reconciler.state.backend (every journal record) and reconciler.state.local
(every snapshot).
"""

from __future__ import annotations

from typing import Any

from reconciler.manifest.secrets_scan import find_secrets, redact
from reconciler.state.model import StateError

__all__ = ["ensure_secret_free", "redact"]


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{redact(part)}" if text else redact(part)
    return text or "(root)"


def ensure_secret_free(data: Any, where: str) -> None:
    """Raise StateError if any string (value or key) in `data` looks like a secret."""
    for path, what in find_secrets(data):
        raise StateError(
            f"refusing to write {where}: {_dotted(path)} looks like {what}",
            next_step="state must stay secret-free: keep credentials out of resource attributes "
            "(use env: or file: references in manifests); nothing was written",
        )
