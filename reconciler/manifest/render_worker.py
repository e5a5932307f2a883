"""Rendering templates in a child process that cannot take recon down with it.

A template is code from a pull request. jinja2's sandbox stops it reaching Python's
internals, and reconciler.manifest.templating bounds what its operators and filters make,
but neither can stop a C-level computation once started or prove that nothing allocates
without bound. So every render of one load runs in one forked child (fork: the child
inherits the imported modules and the variables, so it starts in milliseconds) that is
bounded by construction:

- memory: RLIMIT_AS at what the child had when forked plus RENDER_MEMORY_BYTES, so an
  allocation beyond it fails (a MemoryError, reported with the template line);
- CPU: RLIMIT_CPU, TEMPLATE_SECONDS (+1) more for each template, so a computation the
  interpreter cannot interrupt is killed by the kernel (SIGXCPU);
- wall clock: the child stops a template at TEMPLATE_SECONDS (SIGALRM, with the template
  line), and the parent kills the child when a result is GRACE_SECONDS later than that;
- output: at most MAX_RENDERED_CHARS characters and MAX_RENDERED_LINES lines per template,
  and the parent reads a reply of at most MAX_REPLY_BYTES, parsed by reconciler.jsonsafe;
- no files: RLIMIT_FSIZE 0 and no core dumps.

The child reads each template itself (reconciler.manifest.source.read_text), renders it,
maps its rendered lines back to template lines (reconciler.manifest.linemap, also work
bounded) and writes one JSON reply per template to a pipe, in order, each after a header
with the job's index and the reply's length. The
parent reads the replies as the loader asks for them, so the child renders ahead while the
parent parses other files. When the child dies or is killed the template it was rendering
gets a diagnostic (timeout, memory, crash) and a new child renders the rest, so one hostile
template never hides the diagnostics of the others. Nothing the child sends is trusted:
sizes, types and line numbers are checked before use.

Called by: reconciler.manifest.loader (every template of one load in one batch) and the
`recon render` command; `render_template` renders one text (tests, tools).
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import gc
import json
import os
import resource
import select
import signal
import struct
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from reconciler import jsonsafe
from reconciler.manifest.linemap import LineMap, build_line_map
from reconciler.manifest.source import SourceProblem, read_text
from reconciler.manifest.templating import MAX_RENDERED_CHARS, render

TEMPLATE_SECONDS = 10.0
GRACE_SECONDS = 2.0
RENDER_MEMORY_BYTES = 512 * 1024 * 1024
MAX_RENDERED_LINES = 1_000_000
MAX_REPLY_BYTES = 8 * MAX_RENDERED_CHARS + 16 * MAX_RENDERED_LINES
_HEADER = struct.Struct("!IQ")
"""Each reply: the index of its job in the child's list, and the payload's length."""
_PIPE_BYTES = 1024 * 1024
_EXIT_MEMORY = 3
_EXIT_OTHER = 4


@dataclass(frozen=True, slots=True)
class TemplateJob:
    """One template: a file the child reads, or a text."""

    path: Path | None = None
    text: str | None = None


@dataclass(slots=True)
class Rendered:
    """The outcome for one job: the text (and its line map, when asked for), or a problem."""

    text: str = ""
    line_map: LineMap | None = None
    problem: SourceProblem | None = None


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """Render one template text in a child process. Raises SourceProblem."""
    with RenderBatch([TemplateJob(text=text)], variables, line_maps=False) as batch:
        result = next(iter(batch))
    if result.problem is not None:
        raise result.problem
    return result.text


class RenderBatch:
    """Renders `jobs` in order, in child processes; iterate once for one Rendered per job.
    Use as a context manager (or call close) so a child is never left behind."""

    def __init__(self, jobs: Sequence[TemplateJob], variables: Mapping[str, Any], *, line_maps: bool) -> None:
        self._jobs = list(jobs)
        self._variables = dict(variables)
        self._line_maps = line_maps
        self._child: _Child | None = None
        self._start_error: OSError | None = None
        if self._jobs:  # start now: the child renders while the caller does other work
            try:
                self._child = _Child.start(self._jobs, self._variables, self._line_maps)
            except OSError as error:
                self._start_error = error
        self._results = self._run()

    def __enter__(self) -> RenderBatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Rendered]:
        return self._results

    def close(self) -> None:
        self._results.close()
        if self._child is not None:
            self._child.stop()
            self._child = None

    def _run(self) -> Generator[Rendered, None, None]:
        index = 0
        while index < len(self._jobs):
            try:
                if self._start_error is not None:
                    raise self._start_error
                if self._child is None:
                    self._child = _Child.start(self._jobs[index:], self._variables, self._line_maps)
            except OSError as error:
                problem = f"cannot start the template renderer ({error.strerror or error})"
                for _ in self._jobs[index:]:
                    yield Rendered(problem=SourceProblem("template.renderer", problem, hint="try again"))
                return
            try:
                while index < len(self._jobs):
                    result = self._child.next_result()
                    index += 1
                    yield result
                    if self._child.failed:
                        break
            finally:
                self._child.stop()
                self._child = None


class _Child:
    """One renderer child: its pid, the read end of its pipe, and how it ended."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.failed = False
        self._next = 0
        self._status: int | None = None

    @classmethod
    def start(cls, jobs: Sequence[TemplateJob], variables: Mapping[str, Any], line_maps: bool) -> _Child:
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe only makes the child wait sooner
            fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:
            os.close(read_fd)
            _child_main(write_fd, jobs, variables, line_maps)
        os.close(write_fd)
        return cls(pid, read_fd)

    def next_result(self) -> Rendered:
        deadline = time.monotonic() + TEMPLATE_SECONDS + GRACE_SECONDS
        header = self._read(_HEADER.size, deadline)
        if header is not None:
            index, length = _HEADER.unpack(header)
            if index != self._next:
                return self._fail("template.renderer", "the renderer replied out of order")
            self._next += 1
            if length > MAX_REPLY_BYTES:
                return self._fail("template.renderer", "the renderer sent a reply larger than allowed")
            payload = self._read(length, deadline)
            if payload is not None:
                try:
                    return _decode(payload)
                except (ValueError, TypeError, KeyError) as error:
                    return self._fail("template.renderer", f"the renderer sent a malformed reply ({error})")
        return self._ended(timed_out=time.monotonic() >= deadline)

    def _read(self, size: int, deadline: float) -> bytes | None:
        """Exactly `size` bytes, or None at the end of the stream or at `deadline`."""
        chunks: list[bytes] = []
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(max(1, int(remaining * 1000))):
                if time.monotonic() >= deadline:
                    return None
                continue
            chunk = os.read(self.fd, min(size, _PIPE_BYTES))
            if not chunk:
                return None
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _fail(self, code: str, message: str, hint: str = "") -> Rendered:
        self.failed = True
        self.stop()
        return Rendered(problem=SourceProblem(code, message, hint=hint))

    def _ended(self, *, timed_out: bool) -> Rendered:
        """The child sent nothing more for the current template: why, as its diagnostic."""
        self.failed = True
        if not timed_out:
            self._wait(GRACE_SECONDS)
        self.stop()
        status = self._status or 0
        if timed_out or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU):
            return Rendered(
                problem=SourceProblem(
                    "template.timeout",
                    f"rendering took longer than {TEMPLATE_SECONDS:.0f} s",
                    hint="loop over fewer items; templates compute small things",
                )
            )
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == _EXIT_MEMORY:
            return Rendered(
                problem=SourceProblem("template.memory", "rendering needs more memory than a template may use")
            )
        if os.WIFSIGNALED(status):
            what = f"was stopped by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            what = f"stopped (exit status {os.WEXITSTATUS(status)})"
        return Rendered(
            problem=SourceProblem(
                "template.crashed",
                f"the template renderer {what} while rendering this template",
                hint="simplify the template; run `recon render` on it alone to see more",
            )
        )

    def _wait(self, seconds: float) -> None:
        """Reap the child if it exits within `seconds` (it closed its pipe, so it should);
        its exit status says why it ended. A child that lingers is killed by stop()."""
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            pidfd = -1
        try:
            if pidfd >= 0:
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                poller.poll(int(seconds * 1000))
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = status
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def stop(self) -> None:
        """Kill and reap the child (idempotent) and close the pipe."""
        if self._status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _, self._status = os.waitpid(self.pid, 0)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _decode(payload: bytes) -> Rendered:
    """A reply from the child, checked field by field."""
    data = jsonsafe.loads(payload, max_bytes=MAX_REPLY_BYTES)
    if not isinstance(data, dict):
        raise TypeError("not an object")
    if "problem" in data:
        problem = data["problem"]
        code, message, hint = (str(problem[k]) for k in ("code", "message", "hint"))
        line, column = (problem[k] for k in ("line", "column"))
        if not (isinstance(line, int) and isinstance(column, int) and code.startswith(("template.", "file."))):
            raise ValueError("bad problem fields")
        return Rendered(problem=SourceProblem(code, message, max(line, 0), max(column, 0), hint))
    text = data["text"]
    if not isinstance(text, str) or len(text) > MAX_RENDERED_CHARS:
        raise ValueError("bad text")
    lines, prefix = data.get("lines"), data.get("prefix")
    if lines is None:
        return Rendered(text=text)
    count = len(text.splitlines())
    if not (
        isinstance(lines, list)
        and isinstance(prefix, list)
        and len(lines) == len(prefix) == count
        and all(isinstance(n, int) and n >= 0 for n in lines)
        and all(isinstance(n, int) and n >= 0 for n in prefix)
    ):
        raise ValueError("bad line map")
    return Rendered(text=text, line_map=LineMap(template_line=lines, literal_prefix=prefix))


# --------------------------------------------------------------------------------------------
# The child. Everything below runs after fork, and ends in os._exit.
# --------------------------------------------------------------------------------------------


def _child_main(fd: int, jobs: Sequence[TemplateJob], variables: Mapping[str, Any], line_maps: bool) -> NoReturn:
    code = _EXIT_OTHER
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the child
        faulthandler.disable()  # a crash here is the parent's to report, as one diagnostic
        gc.freeze()  # what the parent made is never collected here (nor copied by touching it)
        gc.enable()
        _limit_resources(len(jobs))
        for index, job in enumerate(jobs):
            _allow_cpu(TEMPLATE_SECONDS + 1)
            payload = _reply(job, variables, line_maps)
            _write_all(fd, _HEADER.pack(index, len(payload)) + payload)
        code = 0
    except MemoryError:
        code = _EXIT_MEMORY
    except BaseException:
        code = _EXIT_OTHER
    finally:
        os._exit(code)


def _limit_resources(jobs: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    try:
        with open("/proc/self/statm", "rb") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        used = 0
    if used:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + RENDER_MEMORY_BYTES
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    total = int(_cpu_seconds() + jobs * (TEMPLATE_SECONDS + 1) + 2)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or hard > total:
        resource.setrlimit(resource.RLIMIT_CPU, (total, total))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _allow_cpu(seconds: float) -> None:
    """Let the next template use `seconds` more CPU (SIGXCPU after that)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(_cpu_seconds() + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _reply(job: TemplateJob, variables: Mapping[str, Any], line_maps: bool) -> bytes:
    try:
        template = job.text if job.text is not None else read_text(job.path or Path())
        rendered = render(template, variables, TEMPLATE_SECONDS)
        if rendered.count("\n") >= MAX_RENDERED_LINES:
            raise SourceProblem(
                "template.too-large",
                f"the rendered output has more than {MAX_RENDERED_LINES:,} lines",
                hint="generate fewer resources per file",
            )
        reply: dict[str, Any] = {"text": rendered}
        if line_maps:
            line_map = build_line_map(template, rendered)
            reply.update(lines=line_map.template_line, prefix=line_map.literal_prefix)
        return json.dumps(reply, ensure_ascii=False).encode("utf-8")
    except SourceProblem as problem:
        return _problem(problem.code, problem.message, problem.line, problem.column, problem.hint)
    except UnicodeEncodeError:
        return _problem(
            "template.encoding", "the rendered text holds characters that are not valid Unicode (lone surrogates)"
        )
    except MemoryError:
        return _problem("template.memory", "rendering needs more memory than a template may use")
    except Exception as error:
        return _problem("template.error", f"template error: {type(error).__name__}")


def _problem(code: str, message: str, line: int = 0, column: int = 0, hint: str = "") -> bytes:
    problem = {"code": code, "message": message, "line": line, "column": column, "hint": hint}
    return json.dumps({"problem": problem}, ensure_ascii=True).encode("ascii")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
