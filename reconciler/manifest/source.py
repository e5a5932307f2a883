"""Finding and reading manifest files.

`discover(paths)` walks the given files and directories (sorted, hidden folders skipped) and
returns manifest files (`*.yaml`, `*.yml`, `*.yaml.j2`, `*.yml.j2`) and the project file
(`recon.yaml` at a given root; a `recon.yaml` anywhere is never read as a manifest). A
`recon.yaml` that exists but is not a regular file (a pipe, a symlink to `/dev/zero`) is
still the project file, so reading it fails loudly instead of recon silently using the
default target. Symlink loops are files that cannot be read, never a crash.

`read_text(path)` reads through reconciler.safefile.read_bytes (regular files only, opened
without blocking, the 10 MiB limit enforced while reading, so a symlink to `/dev/zero` or
`/dev/urandom`, a named pipe or a growing file cannot hang or exhaust recon) and decodes
strict UTF-8, naming the line of a bad byte. Manifests, the project file and `--var-file`
files are all read by it. Templates are rendered by reconciler.manifest.render_worker.

Called by: reconciler.manifest.loader, .project, .variables, .render_worker and the
`recon render` command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.diagnostics import LocatedProblem
from reconciler.safefile import UnsafeFile, read_bytes

MAX_FILE_BYTES = 10 * 1024 * 1024
PROJECT_FILE_NAMES = ("recon.yaml", "recon.yml")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")


class SourceProblem(LocatedProblem):
    """A file that cannot be read or rendered, with the 1-based line where known."""


@dataclass(frozen=True, slots=True)
class Discovered:
    manifests: list[Path]
    project_file: Path | None
    missing: list[str]


def display_path(path: Path) -> str:
    """The path as users and SARIF want it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # outside the working directory; a symlink loop
        return path.as_posix()


def _identity(path: Path) -> Path:
    """What `path` names, for counting a file once (a symlink loop names only itself)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def is_template(path: Path) -> bool:
    return path.name.endswith(".j2")


def _is_manifest(name: str) -> bool:
    return name.endswith(MANIFEST_SUFFIXES) and name not in PROJECT_FILE_NAMES


def discover(paths: Sequence[str | Path]) -> Discovered:
    """Manifest files under `paths`, sorted, and the first root's project file."""
    manifests: list[Path] = []
    project: Path | None = None
    missing: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            if project is None:
                project = next((root / n for n in PROJECT_FILE_NAMES if os.path.lexists(root / n)), None)
            candidates: list[Path] = []
            for folder, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                candidates.extend(Path(folder) / f for f in sorted(filenames) if _is_manifest(f))
        elif os.path.lexists(root):  # a file, or something read_text will refuse to read
            candidates = [root] if _is_manifest(root.name) or root.suffix in (".yaml", ".yml") else []
        else:
            missing.append(str(raw))
            continue
        for candidate in candidates:
            key = _identity(candidate)
            if key not in seen:
                seen.add(key)
                manifests.append(candidate)
    return Discovered(manifests=manifests, project_file=project, missing=missing)


_READ_PROBLEMS = {
    "missing": ("file.missing", "the file does not exist", "check the path"),
    "not-regular": ("file.not-regular", "", "replace it with a regular file (no pipes, devices or directories)"),
    "unreadable": ("file.unreadable", "", "check the file's permissions"),
}


def read_text(path: Path) -> str:
    """The file's text. Raises SourceProblem (`file.*`) for a file that is missing, not a
    regular file, unreadable, over 10 MiB, or not UTF-8."""
    try:
        data = read_bytes(path, MAX_FILE_BYTES, what="the file")
    except UnsafeFile as error:
        if error.reason == "too-large":
            raise SourceProblem(
                "file.too-large",
                f"the file is larger than 10 MiB; manifests are limited to 10 MiB ({MAX_FILE_BYTES:,} bytes)",
                hint="split it into several files",
            ) from None
        code, message, hint = _READ_PROBLEMS.get(error.reason, _READ_PROBLEMS["unreadable"])
        raise SourceProblem(code, message or error.message, hint=hint) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        raise SourceProblem(
            "file.encoding",
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8",
            line,
            column,
            "save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")
