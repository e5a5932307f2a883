"""Bounded reading of files recon did not write: the one way to open input by path.

A pull request can put anything where recon expects a manifest, a variables file, a plan,
a secret file or a state file: a symlink to `/dev/zero` or `/dev/urandom` (whose size is 0,
so a size check before reading passes), a named pipe (opening it blocks until a writer
comes), a directory, a 50 GB file. `read_bytes` opens without blocking, checks on the open
descriptor (not the path, which can be swapped between check and use) that it is a regular
file, and reads at most `max_bytes + 1` bytes, so the size is enforced while reading and a
file that grows while read cannot exceed it.

`UnsafeFile` (an OSError, so callers that already handle unreadable files keep working)
says why in words a user can act on; `reason` is a short code (`not-regular`,
`too-large`, `missing`, `unreadable`).

Called by: reconciler.manifest.source (manifests, the project file, variables files), the
CLI (saved plans, secret references), reconciler.state. Imports nothing of the package.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsafeFile(OSError):
    """A file recon refuses to read, or cannot. `reason`: not-regular, too-large, missing,
    unreadable. The message names the path and never the contents."""

    def __init__(self, reason: str, message: str, *, error_number: int = 0) -> None:
        super().__init__(error_number, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


def _what(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: str | Path, max_bytes: int, *, what: str = "the file") -> bytes:
    """The contents of `path`, a regular file of at most `max_bytes` bytes (symlinks are
    followed: where they may lead is the caller's decision). Raises UnsafeFile."""
    shown = os.fspath(path)
    try:
        fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnsafeFile("missing", f"{what} {shown} does not exist", error_number=errno.ENOENT) from None
    except OSError as error:
        raise UnsafeFile(
            "unreadable", f"{what} {shown} cannot be read ({error.strerror})", error_number=error.errno or 0
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile("not-regular", f"{what} {shown} is {_what(mode)}; only regular files are read")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UnsafeFile("too-large", f"{what} {shown} is larger than the limit of {max_bytes:,} bytes")
        return b"".join(chunks)
    except UnsafeFile:
        raise
    except OSError as error:
        raise UnsafeFile(
            "unreadable", f"{what} {shown} cannot be read ({error.strerror})", error_number=error.errno or 0
        ) from None
    finally:
        os.close(fd)
