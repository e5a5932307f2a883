"""What a market-data feed adapter needs to know, and the one client it talks through.

`FeedSettings.from_spec` turns a `MarketDataFeed` manifest spec into plain runtime settings
(timeout in seconds, file paths resolved against the project folder and confined to it or
$RECON_SECRETS_DIR by reconciler.secretrefs, the instrument list as hashable
`InstrumentRef`s). `open_client` builds the feed's single shared `httpx.AsyncClient`, with
mutual TLS when the manifest asks for it; the feed URL must pass reconciler.endpoints.

Certificate, CA and key files are read by recon itself (reconciler.safefile: regular files
of at most 64 KiB; a pipe or `/dev/zero` cannot hang OpenSSL), never opened by OpenSSL from a
path a manifest names. The mTLS client key (a secret reference) never lives in a file recon
leaves behind: the stdlib `ssl` module can only load a certificate chain from a path, so the
PEM (from `env:NAME` or the file read) is written to an anonymous in-memory file (Linux
`memfd_create`, reached as `/proc/self/fd/N`: never on any filesystem) and loaded into the
`ssl.SSLContext` at startup; the descriptor is closed at once. Where memfd is unavailable, a
0600 file in a fresh 0700 temporary folder is used and deleted right after loading (the
context keeps the parsed key in OpenSSL's memory, so nothing needs to stay on disk until
close). The key is never logged or put in an error.

Secrets are resolved by a function the caller passes in (`Resolve`), so this layer never
imports the CLI. Configuration problems raise `FeedConfigError` at startup, never during a call.

Called by: reconciler.runtime.snapshot.feeds (adapters) and .fetcher (`open_fetcher`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Literal

import httpx

from reconciler import endpoints, secretrefs
from reconciler.errors import ReconError
from reconciler.manifest.kinds.runtime import MarketDataFeedSpec
from reconciler.safefile import UnsafeFile, read_bytes

Provider = Literal["generic-rest", "bloomberg", "refinitiv", "ice"]
Resolve = Callable[[str], str]
"""Turns a secret reference (`env:NAME` / `file:PATH`) into the secret's value."""
JsonScalar = str | int | float
Snapshot = dict[str, JsonScalar]
"""`{"timestamp_utc": ..., "source_provider": ..., <as>: <value>, ...}`."""
RESERVED_KEYS = frozenset({"timestamp_utc", "source_provider"})


class FeedError(Exception):
    """One fetch failed. `category` is a short, bounded label for metrics ("http status",
    "bad response", "missing data", "provider error", "transport", "auth"); `message` says what
    happened, never with a secret in it. Caught by the fetcher; never reaches a call."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


class FeedConfigError(ReconError):
    """The feed cannot be set up (unreadable certificate, bad key, unusable instrument). Raised at
    startup only."""


@dataclass(frozen=True, slots=True)
class InstrumentRef:
    """One value to capture: `field` of `symbol`, stored in the snapshot under `as_`."""

    symbol: str
    field: str
    as_: str


InstrumentKey = tuple[InstrumentRef, ...]


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Mutual TLS: certificate and CA as paths, the key as a secret reference."""

    client_cert: Path
    client_key: str = field(repr=False)
    ca: Path | None = None


DEFAULT_COALESCE_WINDOW = 0.010
"""Seconds after a fetch starts during which other calls for the same instruments join it
(the manifest's coalesceWindowMs default)."""


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """One feed, as the runtime uses it. Secret fields hold references, never values."""

    name: str
    provider: Provider
    url: str
    instruments: InstrumentKey
    timeout_s: float = 0.2
    coalesce_window_s: float = DEFAULT_COALESCE_WINDOW
    """Calls starting within this long of a fetch in flight share it (manifest coalesceWindowMs)."""
    tls: TlsSettings | None = None
    token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    breaker_threshold: int | None = None
    breaker_reset_s: float | None = None
    allow_link_local: bool = False
    """The manifest's allowLinkLocal: the URL may be a link-local address."""

    @classmethod
    def from_spec(cls, name: str, spec: MarketDataFeedSpec, *, base_dir: Path = Path()) -> FeedSettings:
        """Settings of the manifest feed `name`; `file:` paths are relative to `base_dir` (the
        project root) and must stay inside it or $RECON_SECRETS_DIR (UsageError otherwise)."""
        tls = None
        if spec.tls is not None:
            tls = TlsSettings(
                client_cert=_path(spec.tls.clientCert, base_dir, f"feed {name}: tls.clientCert"),
                client_key=_key_ref(spec.tls.clientKey, base_dir, f"feed {name}: tls.clientKey"),
                ca=_path(spec.tls.ca, base_dir, f"feed {name}: tls.ca") if spec.tls.ca else None,
            )
        credentials = spec.credentials
        settings = cls(
            name=name,
            provider=spec.provider,
            url=spec.url,
            instruments=tuple(InstrumentRef(i.symbol, i.field, i.as_) for i in spec.instruments),
            timeout_s=spec.timeoutMs / 1000,
            coalesce_window_s=spec.coalesceWindowMs / 1000,
            tls=tls,
            token=credentials.token if credentials else None,
            client_id=credentials.clientId if credentials else None,
            client_secret=credentials.clientSecret if credentials else None,
            breaker_threshold=spec.breaker.failureThreshold if spec.breaker else None,
            breaker_reset_s=spec.breaker.resetAfter.milliseconds / 1000 if spec.breaker else None,
            allow_link_local=spec.allowLinkLocal,
        )
        settings.check()
        return settings

    def endpoint(self) -> endpoints.Endpoint:
        """The feed URL as the endpoint policy accepts it, or FeedConfigError saying why not."""
        try:
            return endpoints.check(
                self.url, "http", allow_link_local=self.allow_link_local, what=f"feed {self.name}'s URL"
            )
        except endpoints.EndpointRefused as refused:
            raise FeedConfigError(
                f"refusing to fetch: {refused.message}", next_step=refused.hint or "fix the MarketDataFeed's url"
            ) from None

    def check(self) -> None:
        """Refuse a URL the endpoint policy refuses, and instruments the wire formats cannot
        carry, or that would overwrite a reserved key."""
        self.endpoint()
        for instrument in self.instruments:
            if instrument.as_ in RESERVED_KEYS:
                raise FeedConfigError(
                    f"feed {self.name}: instrument {instrument.symbol} is stored as '{instrument.as_}', "
                    "a key the snapshot itself uses",
                    next_step="give the instrument another 'as'",
                )
            if self.provider != "bloomberg" and ("," in instrument.symbol or "," in instrument.field):
                raise FeedConfigError(
                    f"feed {self.name}: '{instrument.symbol}' / '{instrument.field}' contains a comma, which "
                    f"the {self.provider} query string uses as a separator",
                    next_step="use the feed's name for the instrument without a comma",
                )


def _path(ref: str, base_dir: Path, field: str) -> Path:
    return secretrefs.locate(ref.removeprefix("file:"), base_dir, field=field)


def _key_ref(ref: str, base_dir: Path, field: str) -> str:
    return f"file:{_path(ref, base_dir, field)}" if ref.startswith("file:") else ref


def _read(path: Path, feed: str, what: str) -> bytes:
    """A certificate, CA or key file (a regular file of at most 64 KiB), or FeedConfigError."""
    try:
        return read_bytes(path, secretrefs.MAX_SECRET_BYTES, what=f"feed {feed}: the {what}")
    except UnsafeFile as error:
        raise FeedConfigError(error.message, next_step=f"point tls at a PEM file for the {what}") from None


def open_client(
    settings: FeedSettings,
    resolve: Resolve,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """The feed's one shared client: mTLS when configured, httpx's own timeouts as a backstop
    to the fetcher's hard timeout. `transport` replaces the network (e.g. an in-process feed)."""
    settings.endpoint()
    verify: ssl.SSLContext | bool = True
    if settings.tls is not None:
        verify = tls_context(settings.tls, resolve, feed=settings.name)
    backstop = 2 * settings.timeout_s + 0.05  # the fetcher's hard timeout fires first; this only bounds strays
    return httpx.AsyncClient(
        verify=verify,
        transport=transport,
        timeout=httpx.Timeout(backstop),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        headers=dict(headers or {}),
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        mounts={"http://": None},  # plain http is loopback only: never through a proxy
    )


def tls_context(tls: TlsSettings, resolve: Resolve, *, feed: str, memfd: bool = True) -> ssl.SSLContext:
    """An SSL context trusting `tls.ca` (or the default bundle) with the client certificate and
    key loaded. `memfd=False` forces the temporary-file path (where memfd is missing)."""
    try:
        if tls.ca is not None:
            ca_text = _read(tls.ca, feed, "CA bundle").decode("ascii", errors="replace")
            context = ssl.create_default_context(cadata=ca_text)
        else:
            context = httpx.create_ssl_context(verify=True)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise FeedConfigError(
            f"feed {feed}: the CA bundle {tls.ca} cannot be loaded ({_why(exc)})",
            next_step="check the tls.ca path and that it holds PEM certificates",
        ) from None
    cert = _read(tls.client_cert, feed, "client certificate")
    if tls.client_key.startswith("file:"):
        key = _read(Path(tls.client_key[5:]), feed, "client key")
        with _key_file(cert + b"\n" + key, memfd=memfd) as chain_path:
            _load_chain(context, chain_path, chain_path, feed, shown=tls.client_cert)
        return context
    try:
        pem = resolve(tls.client_key)
    except ReconError:
        raise
    except Exception as exc:  # the resolver's own failure, whatever it is
        raise FeedConfigError(
            f"feed {feed}: the client key {tls.client_key} cannot be read ({type(exc).__name__})",
            next_step="set the variable or fix the file reference for tls.clientKey",
        ) from None
    if "\n" not in pem and "\\n" in pem:
        pem = pem.replace("\\n", "\n")  # a PEM squeezed onto one line of an environment variable
    with _key_file(cert + b"\n" + pem.encode(), memfd=memfd) as chain_path:
        _load_chain(context, chain_path, chain_path, feed, shown=tls.client_cert)
    return context


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, feed: str, *, shown: Path) -> None:
    def no_passphrase() -> str:
        # An encrypted key would otherwise make OpenSSL prompt on the terminal.
        raise FeedConfigError(f"feed {feed}: the client key is encrypted", next_step="provide an unencrypted PEM key")

    try:
        context.load_cert_chain(certfile=cert, keyfile=key, password=no_passphrase)
    except FeedConfigError:
        raise
    except (OSError, ssl.SSLError) as exc:
        raise FeedConfigError(
            f"feed {feed}: the client certificate {shown} and key cannot be loaded ({_why(exc)})",
            next_step="check tls.clientCert is a PEM certificate and tls.clientKey its matching private key",
        ) from None


@contextlib.contextmanager
def _key_file(pem: bytes, *, memfd: bool) -> Iterator[Path]:
    """Yield a path that reads as `pem` for as long as the block runs, then make it unreachable."""
    create = getattr(os, "memfd_create", None)
    if memfd and create is not None and sys.platform.startswith("linux") and Path("/proc/self/fd").is_dir():
        fd = create("recon-feed-client-key", os.MFD_CLOEXEC)
        try:
            os.write(fd, pem)
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    folder = tempfile.mkdtemp(prefix="recon-feed-")  # 0700
    path = Path(folder) / "client-key.pem"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
