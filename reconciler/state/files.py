"""Small, careful file primitives for the local state files.

- `write_all`: one logical write that survives short writes.
- `write_atomically`: temp file in the same folder, flush, (fsync), os.replace, (fsync the
  folder), so a reader sees the old content or the new one, never a mix.
- `storage_errors`: turns an OSError into a StateError that names the file and says what
  to check, so the CLI reports it like any other recon error.

Called by: reconciler.state.local (snapshot, journal) and reconciler.state.lockfile
(lock file, fence counter).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from reconciler.state.model import StateError


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable. A no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, durable: bool) -> None:
    """Replace `path` with `data` atomically. With `durable`, also survive power loss
    (fsync the file before the rename and the folder after it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def storage_errors(action: str, path: Path) -> Iterator[None]:
    """Re-raise an OSError inside the block as a StateError: "cannot {action} {path}: ..."."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise StateError(
            f"cannot {action} {path}: {reason}",
            next_step="check that the folder exists, is writable and has free space",
        ) from error
