"""Start, find, stop and reset the sandbox daemon of one folder; talk to its admin endpoint.

    up(dir, ...)          spawn `python -m reconciler.sandbox serve --dir DIR` detached and wait
                          (bounded) until DIR/endpoints.json names it and Genesys answers;
                          returns the running endpoints when it is already up (idempotent)
    status(dir)           running or not; a stale endpoints.json (dead pid) is removed
    down(dir)             SIGTERM, bounded wait, SIGKILL as a last resort; idempotent
    reset(dir)            down, then delete the persisted sandbox state in DIR (not the log)
    ensure_running(dir)   status, else up: what plan/apply/drift use when no target is set
    mutate(dir, ...)      an out-of-band edit "in the admin console", via the daemon's
                          POST /api/v2/sandbox/mutate

The daemon is identified by the pid in endpoints.json; where /proc is available the pid's
command line must also be a sandbox daemon, so a recycled pid is never signalled.
Plain functions returning data; every failure is a SandboxError that says what to do next.

Called by: reconciler.cli.sandbox_commands (and the commands that need a sandbox target).
Imports only the stdlib, httpx, reconciler.errors and reconciler.sandbox siblings.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import reconciler
from reconciler.errors import ReconError
from reconciler.sandbox.daemon import ENDPOINTS_FILE, EXIT_FOLDER_TAKEN, LOCK_FILE, LOG_FILE

DAEMON_MODULE = "reconciler.sandbox"
COLLECTIONS = ("policies", "queues", "users", "settings")
DEFAULT_CHANGED_BY = "jane.doe@acme.example"
_POLL_S = 0.05
_PROBE_TIMEOUT_S = 1.0
_LOG_TAIL_LINES = 15


class SandboxError(ReconError):
    """The sandbox could not be started, found, stopped or reset, or refused a request."""


@dataclass(frozen=True)
class Endpoints:
    """Where a running sandbox listens, as read from its endpoints.json."""

    pid: int
    started: str
    genesys_url: str
    login_url: str
    client_id: str
    client_secret: str
    services: Mapping[str, Any]

    @property
    def s3_url(self) -> str | None:
        s3 = self.services.get("s3")
        url = s3.get("url") if isinstance(s3, Mapping) else None
        return url if isinstance(url, str) else None

    @classmethod
    def from_json(cls, document: Any) -> Endpoints:
        """Parse an endpoints.json document; ValueError when it is not one."""
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        services = document.get("services")
        genesys = services.get("genesys") if isinstance(services, dict) else None
        pid = document.get("pid")
        if not isinstance(services, dict) or not isinstance(genesys, dict) or not isinstance(pid, int):
            raise ValueError("pid, services or services.genesys missing")
        fields = [genesys.get(key) for key in ("url", "loginUrl", "clientId", "clientSecret")]
        if not all(isinstance(value, str) for value in fields):
            raise ValueError("services.genesys lacks url, loginUrl, clientId or clientSecret")
        url, login, client_id, secret = (str(value) for value in fields)
        return cls(pid, str(document.get("started", "")), url, login, client_id, secret, services)


@dataclass(frozen=True)
class Status:
    """What `status` found in one sandbox folder."""

    directory: Path
    running: bool
    endpoints: Endpoints | None = None
    stale_removed: bool = False  # a leftover endpoints.json of a dead daemon was removed

    @property
    def pid(self) -> int | None:
        return self.endpoints.pid if self.endpoints else None

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "pid": self.pid,
            "dir": str(self.directory),
            "services": dict(self.endpoints.services) if self.endpoints else {},
        }


# -- finding the daemon ---------------------------------------------------------------------


def _endpoints_path(directory: Path) -> Path:
    return directory / ENDPOINTS_FILE


def _read_endpoints(directory: Path) -> Endpoints | None:
    """The endpoints file's content; None when it is absent or unreadable (half-written files
    cannot happen: the daemon replaces it atomically)."""
    try:
        return Endpoints.from_json(json.loads(_endpoints_path(directory).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


# Daemons this process spawned and that still run. Holding them keeps Popen from warning that
# a (deliberately detached) child is "still running" when it is garbage-collected; _reap
# collects them once they exit, so a long-lived caller accumulates no zombies.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    """Collect `pid` if it is a finished child of this process (else it lingers as a zombie)."""
    child = _spawned.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _spawned[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _is_daemon(pid: int) -> bool:
    """Whether `pid` is a live sandbox daemon (not a zombie, not a recycled pid)."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    try:
        command = (proc / "cmdline").read_bytes().split(b"\0")
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust the pid
    return state not in {"Z", "X"} and DAEMON_MODULE.encode() in command


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def status(directory: Path) -> Status:
    """Whether a sandbox daemon serves `directory`. A stale endpoints.json is removed."""
    path = _endpoints_path(directory)
    endpoints = _read_endpoints(directory)
    if endpoints is not None and _is_daemon(endpoints.pid):
        return Status(directory, True, endpoints)
    stale = path.is_file()
    if stale:
        _remove(path)
    return Status(directory, False, None, stale_removed=stale)


# -- starting -------------------------------------------------------------------------------


def _answers(url: str) -> bool:
    """Whether anything answers HTTP at `url` (any status counts: the port is served)."""
    try:
        httpx.get(f"{url}/api/v2/sandbox/health", timeout=_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return True


def _log_tail(directory: Path) -> str:
    try:
        lines = (directory / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"    {line}" for line in lines[-_LOG_TAIL_LINES:]) or "(the log is empty)"


def _check_knobs(latency_ms: int, rate_429: float, rate_5xx: float) -> None:
    if latency_ms < 0:
        raise SandboxError(f"latency {latency_ms} ms is negative", next_step="pass --latency-ms 0 or more")
    for name, rate in (("429", rate_429), ("5xx", rate_5xx)):
        if not 0.0 <= rate <= 1.0:
            raise SandboxError(f"the {name} rate {rate} is not between 0 and 1", next_step=f"pass --rate-{name} 0..1")
    if rate_429 + rate_5xx > 1.0:
        raise SandboxError("the 429 and 5xx rates add up to more than 1", next_step="lower --rate-429 or --rate-5xx")


def _child_environment() -> dict[str, str]:
    """The daemon runs this very recon: put its source root first on PYTHONPATH."""
    root = str(Path(reconciler.__file__).resolve().parents[1])
    existing = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + existing if existing else "")}


def _stop_child(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def up(
    directory: Path,
    *,
    latency_ms: int = 0,
    rate_429: float = 0.0,
    rate_5xx: float = 0.0,
    timeout: float = 20.0,
) -> Endpoints:
    """Start the sandbox daemon for `directory` (or return the one already running there).

    A daemon already running keeps its fault knobs; `down` first to change them.
    """
    current = status(directory)
    if current.endpoints is not None:
        return current.endpoints
    _check_knobs(latency_ms, rate_429, rate_5xx)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        log = (directory / LOG_FILE).open("ab")
    except OSError as error:
        raise SandboxError(
            f"cannot use {directory} as the sandbox folder: {error.strerror or error}",
            next_step="make sure the path is a writable folder (not a file), or pass another --project-dir",
        ) from None
    command = [sys.executable, "-m", DAEMON_MODULE, "serve", "--dir", str(directory)]
    command += ["--latency-ms", str(latency_ms), "--rate-429", str(rate_429), "--rate-5xx", str(rate_5xx)]
    with log:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_child_environment(),
            )
        except OSError as error:
            raise SandboxError(f"cannot start the sandbox daemon: {error}") from None
    deadline = time.monotonic() + timeout
    child: subprocess.Popen[bytes] | None = process
    while True:
        if child is None:  # another `up` won the race for this folder: wait for its daemon
            time.sleep(_POLL_S)
            running = status(directory).endpoints
            if running is not None and _answers(running.genesys_url):
                return running
        else:
            try:
                code = child.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                pass
            else:
                if code != EXIT_FOLDER_TAKEN:
                    raise SandboxError(
                        f"the sandbox daemon exited with code {code} while starting; the end of "
                        f"{directory / LOG_FILE}:\n{_log_tail(directory)}",
                        next_step="fix what the log says (or run `recon sandbox reset` to start from a fresh seed)",
                    )
                child = None
                continue
            endpoints = _read_endpoints(directory)
            if endpoints is not None and endpoints.pid == child.pid and _answers(endpoints.genesys_url):
                _spawned[child.pid] = child
                return endpoints
        if time.monotonic() > deadline:
            if child is not None:
                _stop_child(child)
            raise SandboxError(
                f"the sandbox daemon did not become ready within {timeout:g} s; the end of "
                f"{directory / LOG_FILE}:\n{_log_tail(directory)}",
                next_step="try again; if it keeps failing, run `recon sandbox reset`",
            )


def ensure_running(directory: Path) -> Endpoints:
    """The running sandbox's endpoints, starting it first if needed."""
    current = status(directory)
    return current.endpoints if current.endpoints is not None else up(directory)


# -- stopping -------------------------------------------------------------------------------


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_daemon(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def down(directory: Path, timeout: float = 10.0) -> bool:
    """Stop the daemon serving `directory`; True if one was running. Idempotent."""
    current = status(directory)
    if current.endpoints is None:
        return False
    pid = current.endpoints.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise SandboxError(
                f"the sandbox daemon (pid {pid}) did not stop, even after SIGKILL",
                next_step=f"check the process with `ps -p {pid}`",
            )
    _remove(_endpoints_path(directory))
    return True


def reset(directory: Path) -> list[Path]:
    """Stop the sandbox and delete its persisted state in `directory` (every entry except the
    log and the daemon's lock file), so that the next `up` starts from the seed. Returns what
    was removed. Nothing outside `directory` is touched (symlinks are removed, not followed)."""
    down(directory)
    if not directory.is_dir():
        return []
    removed: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.name in {LOG_FILE, LOCK_FILE}:  # the lock is no state; an advisory flock target
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as error:
            raise SandboxError(f"cannot remove {entry}: {error.strerror or error}") from None
        removed.append(entry)
    return removed


# -- out-of-band edits ----------------------------------------------------------------------


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error_description") or body)
    return str(body)


def mutate(
    directory: Path,
    collection: str,
    name: str,
    changes: Mapping[str, Any],
    *,
    changed_by: str = DEFAULT_CHANGED_BY,
) -> Any:
    """Change one object of the running sandbox as `changed_by` would in the admin console
    (audited under that user). Returns the sandbox's answer (the changed object)."""
    if collection not in COLLECTIONS:
        raise SandboxError(f"unknown collection {collection!r}", next_step=f"use one of {', '.join(COLLECTIONS)}")
    endpoints = status(directory).endpoints
    if endpoints is None:
        raise SandboxError("the sandbox is not running", next_step="start it with `recon sandbox up`")
    basic = base64.b64encode(f"{endpoints.client_id}:{endpoints.client_secret}".encode()).decode()
    payload = {"collection": collection, "name": name, "changes": dict(changes), "changedBy": changed_by}
    try:
        with httpx.Client(base_url=endpoints.genesys_url, timeout=10.0) as client:
            token = client.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
            )
            if token.status_code != 200:
                raise SandboxError(f"the sandbox refused its own test credentials: {_error_text(token)}")
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            response = client.post("/api/v2/sandbox/mutate", json=payload, headers=bearer)
    except httpx.HTTPError as error:
        raise SandboxError(
            f"cannot reach the sandbox at {endpoints.genesys_url}: {error}",
            next_step="check `recon sandbox status`; restart it with `recon sandbox down` and `recon sandbox up`",
        ) from None
    if response.status_code == 404 and _error_text(response) == "no resource at /api/v2/sandbox/mutate":
        raise SandboxError(
            "this sandbox has no mutate endpoint (POST /api/v2/sandbox/mutate)",
            next_step="restart it (`recon sandbox down`, `recon sandbox up`) to run this recon's server; "
            "if it still says so, this build of recon cannot mutate the sandbox yet",
        )
    if response.status_code >= 400:
        raise SandboxError(
            f"the sandbox refused the change to {collection} {name!r} (HTTP {response.status_code}): "
            f"{_error_text(response)}",
            next_step=f"check that {collection} has an object named {name!r} and that the keys you --set exist",
        )
    try:
        return response.json()
    except ValueError:
        return None
