"""The sandbox S3's state on disk: moto's S3 and KMS backends, saved and restored whole.

moto keeps buckets, object versions (bodies, version ids, metadata), Object Lock retention,
legal holds, bucket configuration (versioning, lock, encryption, policy, lifecycle, tags) and
KMS keys and aliases in module-level backends of the process that serves them (the sandbox
daemon). moto itself has no persistence, so `dump` pickles those backends and `load` puts them
back before the server starts: what was archived before `recon sandbox down` is there, with the
same version ids, after `recon sandbox up`. Two things pickle needs help with:
`_VersionedKeyStore` (a bucket's keys) pickles only each key's latest version through its
`items()`, so every version list is saved as it is; KMS private keys (cryptography objects) are
saved as PKCS#8 DER.

A pickle is code: whoever can write the state file could run code in the daemon. The project
folder is not trusted (a pull request can commit `.recon/sandbox/s3-state.pickle`), so the file
is authenticated: HMAC-SHA256 under a 32-byte key kept *outside* the project, in
`$XDG_STATE_HOME/recon/sandbox-state.key` (default `~/.local/state/recon/`), created 0600 on
first use. A file whose MAC does not verify (another machine's, a forged one, a torn one) is
never unpickled; unpickling is further limited to moto's, the datetime/collections modules' and
this module's classes. Such a file is moved aside (`s3-state.pickle.rejected`) and the S3 starts
empty, saying why.

File format: MAGIC, then the MAC (32 bytes), then the pickle. Written atomically (temporary
file, fsync, rename), so a reader sees the previous save or the new one, never half of one.

Called by: reconciler.sandbox.s3_server. Imports the stdlib, moto and cryptography (both moto's
dependencies), and reconciler.safefile.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import os
import pickle
import secrets
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.s3.utils import _VersionedKeyStore

from reconciler.safefile import UnsafeFile, read_bytes

STATE_FILE: Final = "s3-state.pickle"
REJECTED_SUFFIX: Final = ".rejected"
MAGIC: Final = b"recon-sandbox-s3 v1\n"
MAX_STATE_BYTES: Final = 2 * 1024**3
KEY_BYTES: Final = 32
_BACKENDS: Final[dict[str, Any]] = {"s3": s3_backends, "kms": kms_backends}
_PRIVATE_KEYS: Final = typing.get_args(PrivateKeyTypes)
_ALLOWED_MODULES: Final = ("moto.", "datetime", "collections", "copyreg", "decimal", "uuid", __name__)
_ALLOWED_BUILTINS: Final = frozenset({"set", "frozenset", "bytearray", "complex", "slice", "range", "object"})


class StateProblem(Exception):
    """The state file cannot be used: the message says why (no contents)."""


def key_path() -> Path:
    """Where the MAC key lives: outside every project."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "recon" / "sandbox-state.key"


def state_key() -> bytes:
    """The MAC key, created (0600, exclusively) on first use; StateProblem when unusable."""
    path = key_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
        key = read_bytes(path, KEY_BYTES, what="the sandbox state key")
    except OSError as error:
        raise StateProblem(f"the state key {path} is not usable ({error})") from None
    if len(key) != KEY_BYTES:
        raise StateProblem(f"the state key {path} is not {KEY_BYTES} bytes; delete it to make a new one")
    return key


def _load_private_key(der: bytes) -> Any:
    return serialization.load_der_private_key(der, None)


def _versioned_store(items: list[tuple[str, list[Any]]]) -> _VersionedKeyStore:
    store = _VersionedKeyStore()
    for name, versions in items:
        dict.__setitem__(store, name, versions)
    return store


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _VersionedKeyStore):
            return _versioned_store, ([(name, dict.__getitem__(obj, name)) for name in dict.keys(obj)],)
        if isinstance(obj, _PRIVATE_KEYS):
            der = obj.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return _load_private_key, (der,)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if any(module == allowed.rstrip(".") or module.startswith(allowed) for allowed in _ALLOWED_MODULES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the sandbox state")


def _backends() -> Iterator[tuple[str, str, str, Any]]:
    for service, backend_dict in _BACKENDS.items():
        for account, region, backend in backend_dict.iter_backends():
            yield service, account, region, backend


def snapshot() -> bytes:
    """The pickle of every S3 and KMS backend (call with the server's writes held off)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(list(_backends()))
    return buffer.getvalue()


def write(path: Path, payload: bytes, key: bytes) -> None:
    """Write `payload` under its MAC to `path`, atomically and durably."""
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(MAGIC + mac + payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def restore(path: Path, key: bytes) -> int:
    """Put the backends saved in `path` back into moto; how many were restored (0: no file).
    StateProblem when the file cannot be trusted or read (nothing is restored then)."""
    try:
        data = read_bytes(path, MAX_STATE_BYTES, what="the sandbox S3 state")
    except UnsafeFile as error:
        if error.reason == "missing":
            return 0
        raise StateProblem(str(error)) from None
    header = len(MAGIC) + hashlib.sha256().digest_size
    if not data.startswith(MAGIC) or len(data) < header:
        raise StateProblem(f"{path} is not a sandbox S3 state file")
    mac, payload = data[len(MAGIC) : header], data[header:]
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise StateProblem(f"{path} was not written by this machine's sandbox (its MAC does not verify)")
    try:
        saved = _Unpickler(io.BytesIO(payload)).load()
        entries = [(str(s), str(a), str(r), b) for s, a, r, b in saved]
    except Exception as error:  # an older moto's classes, a damaged file
        raise StateProblem(f"{path} cannot be read by this moto ({type(error).__name__}: {error})") from None
    unknown = sorted({entry[0] for entry in entries} - set(_BACKENDS))
    if unknown:
        raise StateProblem(f"{path} names an unknown service {unknown[0]!r}")
    for service, account, region, backend in entries:
        dict.__setitem__(_BACKENDS[service][account], region, backend)
    return len(entries)


def set_aside(path: Path) -> Path:
    """Move a state file that could not be restored out of the way (kept for inspection)."""
    target = path.with_name(path.name + REJECTED_SUFFIX)
    os.replace(path, target)
    return target
