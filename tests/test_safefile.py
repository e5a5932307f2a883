"""reconciler.safefile: only regular files are read, and the size is enforced while reading."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.safefile import UnsafeFile, read_bytes


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe.yaml"
    os.mkfifo(path)
    return path


def _dev_zero_link(tmp: Path) -> Path:
    path = tmp / "zero.yaml"
    path.symlink_to("/dev/zero")
    return path


def _urandom_link(tmp: Path) -> Path:
    path = tmp / "random.yaml"
    path.symlink_to("/dev/urandom")
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "folder.yaml"
    path.mkdir()
    return path


def _socket(tmp: Path) -> Path:
    path = tmp / "s.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


def _big(tmp: Path) -> Path:
    path = tmp / "big.yaml"
    path.write_bytes(b"x" * 101)
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "nothing.yaml"


@pytest.mark.parametrize(
    ("make", "reason", "words"),
    [
        pytest.param(_fifo, "not-regular", "a named pipe", id="named-pipe-does-not-block"),
        pytest.param(_dev_zero_link, "not-regular", "a character device", id="symlink-to-dev-zero"),
        pytest.param(_urandom_link, "not-regular", "a character device", id="symlink-to-dev-urandom"),
        pytest.param(_directory, "not-regular", "a directory", id="directory"),
        pytest.param(_socket, "unreadable", "cannot be read", id="unix-socket"),
        pytest.param(_big, "too-large", "larger than the limit of 100 bytes", id="over-the-limit"),
        pytest.param(_missing, "missing", "does not exist", id="missing"),
    ],
)
def test_refused(tmp_path: Path, make: Callable[[Path], Path], reason: str, words: str) -> None:
    path = make(tmp_path)
    with pytest.raises(UnsafeFile) as caught:
        read_bytes(path, 100, what="the manifest")
    assert caught.value.reason == reason
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"the manifest {path}")


def test_regular_file_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_bytes(b"y" * 100)
    assert read_bytes(path, 100) == b"y" * 100
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    assert read_bytes(link, 100) == b"y" * 100
