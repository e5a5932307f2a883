"""Secret references: what `env:NAME` and `file:PATH` may name, and reading them.

A manifest or `recon.yaml` never holds a secret, only a reference to one; and since a pull
request can change those files while CI runs them with production credentials, a reference
must not be able to read whatever the runner can. The rules:

- `env:NAME`: NAME is a variable name (`[A-Za-z_][A-Za-z0-9_]*`); an unset or empty
  variable is an error naming it.
- `file:PATH`: a relative PATH is taken from the project root (the folder of `recon.yaml`).
  The file must lie inside the project root, or inside a directory the operator names
  outside the manifests in the environment variable RECON_SECRETS_DIR (one or more
  absolute paths, separated by `:`; e.g. `/run/secrets`); an absolute PATH is allowed only
  there. A `..` component is refused outright, and the path is resolved through every
  symlink before the check, so a symlink cannot lead out either. Only a regular file of at
  most MAX_SECRET_BYTES is read (reconciler.safefile: a pipe or `/dev/zero` cannot hang
  recon). Surrounding whitespace (the newline an editor adds) is stripped.

`reference_problem` is the lexical half (no file system), used when manifests and the
project file are validated; `locate` and `resolve` apply the rest when a reference is used.
Every resolved value is registered with reconciler.redact before it is returned. Messages
name the reference and the field, never the value.

Called by: reconciler.cli.targets (resolve_reference), reconciler.runtime.snapshot.feedconfig
(certificate, CA and key files), reconciler.manifest (validation). Imports only the
foundation modules errors, redact and safefile.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePath

from reconciler import redact
from reconciler.errors import UsageError
from reconciler.safefile import UnsafeFile, read_bytes

SECRETS_DIR_VARIABLE = "RECON_SECRETS_DIR"
MAX_SECRET_BYTES = 64 * 1024
"""A token, a client secret or a PEM key with its chain fits easily."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REFERENCE_HINT = "write env:NAME (an environment variable) or file:PATH (a file inside the project)"


def reference_problem(value: str) -> str | None:
    """Why `value` is not a usable env:/file: reference, without touching the file system
    (None: it is one). Values that are neither are not this function's concern."""
    if value.startswith("env:"):
        if not ENV_NAME.fullmatch(value[4:]):
            return "env: must name an environment variable: letters, digits and _, not starting with a digit"
        return None
    if value.startswith("file:"):
        path = value[5:]
        if not path:
            return "file: needs a path (e.g. file:secrets/token)"
        if _CONTROL.search(path):
            return "the file: path contains a control character or a line break"
        if ".." in PurePath(path).parts or ".." in path.replace("\\", "/").split("/"):
            return "the file: path goes up with '..'; name a file inside the project (or inside $RECON_SECRETS_DIR)"
        return None
    return None


def secret_dirs(environ: Mapping[str, str]) -> list[Path]:
    """The directories RECON_SECRETS_DIR names (absolute ones only), resolved."""
    listed = environ.get(SECRETS_DIR_VARIABLE, "")
    return [Path(os.path.realpath(p)) for p in listed.split(os.pathsep) if p and os.path.isabs(p)]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def locate(path_text: str, root: Path, *, field: str, environ: Mapping[str, str] | None = None) -> Path:
    """The real path a `file:` reference's PATH names, after the checks of the module
    docstring (the file's kind and size are checked when it is read). UsageError otherwise."""
    environ = os.environ if environ is None else environ
    reference = f"file:{path_text}"
    problem = reference_problem(reference)
    if problem is not None:
        raise UsageError(f"{field} refers to {reference}: {problem}", next_step=REFERENCE_HINT)
    project = Path(os.path.realpath(root))
    allowed = [project, *secret_dirs(environ)]
    written = Path(path_text)
    candidate = written if written.is_absolute() else project / written
    real = Path(os.path.realpath(candidate))
    if not any(_inside(real, folder) for folder in allowed):
        where = "the project folder" + (f" or {SECRETS_DIR_VARIABLE}" if len(allowed) > 1 else "")
        lead = "leads (through a symlink) outside" if _inside(candidate, project) else "is outside"
        raise UsageError(
            f"{field} refers to {reference}, which {lead} {where}; recon reads secret files only there",
            next_step=f"move the file into the project (not committed), or name its directory in "
            f"{SECRETS_DIR_VARIABLE} (e.g. {SECRETS_DIR_VARIABLE}=/run/secrets)",
        )
    return real


def read_file(path_text: str, root: Path, *, field: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The bytes of the file a `file:` reference names (see `locate`). UsageError otherwise."""
    real = locate(path_text, root, field=field, environ=environ)
    try:
        return read_bytes(real, MAX_SECRET_BYTES, what=f"{field}'s file")
    except UnsafeFile as error:
        raise UsageError(
            f"{field} refers to file:{path_text}, which cannot be used: {error.message}",
            next_step="point the reference at a regular file holding only the secret",
        ) from None


def resolve(value: str, root: Path, field: str, *, environ: Mapping[str, str] | None = None) -> str:
    """`env:NAME` -> the variable's value, `file:PATH` -> the file's text (stripped);
    anything else is returned as it is. The value is registered for redaction and never
    echoed. UsageError when the reference cannot be used."""
    environ = os.environ if environ is None else environ
    if value.startswith("env:"):
        name = value[4:]
        problem = reference_problem(value)
        if problem is not None:
            raise UsageError(f"{field}: {problem}", next_step=REFERENCE_HINT)
        found = environ.get(name)
        if not found:
            raise UsageError(
                f"{field} refers to the environment variable {name}, which is not set",
                next_step=f"export {name}=... (from your secret manager) and run again",
            )
        redact.register(found)
        return found
    if value.startswith("file:"):
        data = read_file(value[5:], root, field=field, environ=environ)
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UsageError(
                f"{field} refers to {value}, which is not UTF-8 text", next_step="store the secret as text"
            ) from None
        if not text:
            raise UsageError(f"{field} refers to {value}, which is empty", next_step="put the secret in the file")
        redact.register(text)
        return text
    return value
