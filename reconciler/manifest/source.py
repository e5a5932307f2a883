"""Finding, reading and rendering manifest files.

`discover(paths)` walks the given files and directories (sorted, hidden folders skipped) and
returns manifest files (`*.yaml`, `*.yml`, `*.yaml.j2`, `*.yml.j2`) and the project file
(`recon.yaml` at a given root; a `recon.yaml` anywhere is never read as a manifest).
`read_text(path)` enforces the 10 MiB limit and strict UTF-8, naming the line of a bad byte.
`render_template(text, variables)` renders `*.j2` files in a sandboxed jinja2 environment
with StrictUndefined, bounded output, bounded ranges and a wall-clock limit.

Called by: reconciler.manifest.loader and the `recon render` command.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from reconciler.diagnostics import LocatedProblem

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_RENDERED_CHARS = 10 * 1024 * 1024
MAX_TEMPLATE_RANGE = 10_000
TEMPLATE_SECONDS = 10.0
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
    except ValueError:
        return path.as_posix()


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
        if root.is_file():
            candidates = [root] if _is_manifest(root.name) or root.suffix in (".yaml", ".yml") else []
        elif root.is_dir():
            if project is None:
                project = next((root / n for n in PROJECT_FILE_NAMES if (root / n).is_file()), None)
            candidates = []
            for folder, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                candidates.extend(Path(folder) / f for f in sorted(filenames) if _is_manifest(f))
        else:
            missing.append(str(raw))
            continue
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                manifests.append(candidate)
    return Discovered(manifests=manifests, project_file=project, missing=missing)


def read_text(path: Path) -> str:
    """The file's text. Raises SourceProblem for oversize files and bytes that are not UTF-8."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SourceProblem(
            "file.too-large",
            f"the file is {size:,} bytes; manifests are limited to 10 MiB ({MAX_FILE_BYTES:,} bytes)",
            hint="split it into several files",
        )
    data = path.read_bytes()
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


class _BoundedSandbox(SandboxedEnvironment):
    """A sandbox that also bounds `range()` so a template cannot allocate without limit."""

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.globals["range"] = _bounded_range


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_TEMPLATE_RANGE:
        raise SourceProblem(
            "template.range",
            f"range() of {len(result):,} items exceeds the limit of {MAX_TEMPLATE_RANGE:,}",
        )
    return result


_ENVIRONMENT = _BoundedSandbox()


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt rendering after `seconds` (main thread only; elsewhere output caps still apply)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise SourceProblem("template.timeout", f"rendering took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """Render jinja2 `text` in the sandbox. Raises SourceProblem with the template line."""
    try:
        template = _ENVIRONMENT.from_string(text)
        pieces: list[str] = []
        size = 0
        with _time_limit(TEMPLATE_SECONDS):
            for piece in template.generate(**dict(variables)):
                size += len(piece)
                if size > MAX_RENDERED_CHARS:
                    raise SourceProblem(
                        "template.too-large",
                        "the rendered output exceeds 10 MiB",
                        hint="generate fewer resources per file",
                    )
                pieces.append(piece)
        return "".join(pieces)
    except jinja2.TemplateSyntaxError as exc:
        raise SourceProblem("template.syntax", f"template syntax: {exc.message}", exc.lineno) from None
    except jinja2.exceptions.SecurityError as exc:
        raise SourceProblem(
            "template.unsafe",
            f"the template tried something the sandbox forbids: {exc}",
            _template_line(exc),
            hint="templates may use variables, loops, conditions and filters only",
        ) from None
    except jinja2.UndefinedError as exc:
        raise SourceProblem(
            "template.undefined",
            f"template variable: {exc.message}",
            _template_line(exc),
            hint="pass it with --var NAME=VALUE or --var-file FILE",
        ) from None
    except SourceProblem as problem:
        if not problem.line:
            problem.line = _template_line(problem)
        raise
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise SourceProblem("template.error", f"template error: {exc}", _template_line(exc)) from None


def _template_line(exc: BaseException) -> int:
    """The template line being rendered when `exc` was raised (from jinja2's traceback)."""
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
