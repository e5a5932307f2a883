"""The sandbox daemon: the embedded estate's servers in one foreground process.

    python -m reconciler.sandbox serve --dir DIR [--latency-ms N] [--rate-429 F] [--rate-5xx F]

starts, on loopback:

- the Genesys-Cloud-API-compatible server (GenesysSandbox), its org persisted in
  DIR/genesys.json so it survives restarts, told where S3 is so its recording export
  (`POST /api/v2/sandbox/export`) can write to it;
- the market-data server (MarketDataSandbox) the runtime fetches call-start price snapshots
  from, in the generic-rest, bloomberg and refinitiv dialects, with its fault knobs at
  `/sandbox/knobs` (all off at start);
- the TradeSense sandbox (TradeSenseSandbox): WBA websocket servers the collectors poll for
  CDRs, created over its control API (`services.tradesense.serversUrl`); none at start, and
  none survive a restart (in memory). The Genesys server's floor simulator
  (`POST /api/v2/sandbox/floor`) writes CDRs to it;
- an S3 emulator (moto, which also answers KMS: reconciler.sandbox.s3_server) when moto is
  installed; its state (buckets and their configuration, object versions with their version
  ids, Object Lock retention, legal holds, KMS keys) is saved in DIR/s3-state.pickle within a
  second of each write and on the way out, and restored at start, so the archive and the
  evidence heads in it survive `recon sandbox down && up` (a kill -9 loses at most the last
  second of writes). It starts with the customer KMS keys the example desks' archives name
  (SEED_KMS_ALIASES), as a bank's security team would have created them before an archive asks
  for one (kept, not re-created, when restored);

then writes DIR/endpoints.json (atomically) saying where each service listens and with which
test credentials, and serves until SIGTERM or SIGINT. On the way out it stops the servers
and removes endpoints.json (only if the file is still its own). Log lines go to
DIR/sandbox.log.

Called by: reconciler.sandbox.__main__ (and so by reconciler.sandbox.process.up, which spawns
it detached). Imports only the stdlib, optionally moto, and reconciler.sandbox siblings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from reconciler.sandbox.genesys_server import GenesysSandbox
from reconciler.sandbox.marketdata import BLOOMBERG, GENERIC, KNOBS, REFINITIV, TOKEN, MarketDataSandbox
from reconciler.sandbox.marketdata import CLIENT_ID as MARKETDATA_CLIENT_ID
from reconciler.sandbox.marketdata import CLIENT_SECRET as MARKETDATA_CLIENT_SECRET
from reconciler.sandbox.marketdata import TEST_TOKEN as MARKETDATA_TOKEN
from reconciler.sandbox.tradesense import TradeSenseSandbox, tradesense_entry

ENDPOINTS_FILE = "endpoints.json"
LOCK_FILE = ".daemon.lock"
EXIT_FOLDER_TAKEN = 75  # another daemon holds DIR's lock (EX_TEMPFAIL)
GENESYS_STATE_FILE = "genesys.json"
LOG_FILE = "sandbox.log"

CLIENT_ID = "recon-sandbox"
CLIENT_SECRET = "sandbox-secret"
GENESYS_REGION = "sandbox"
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "eu-west-1"
SEED_KMS_ALIASES = (("eu-west-1", "alias/trading-recordings"), ("us-east-1", "alias/fx-recordings-us"))
"""(region, alias) of the customer keys the sandbox account starts with."""

log = logging.getLogger("reconciler.sandbox.daemon")


@dataclass(frozen=True)
class ServeOptions:
    """What `serve` was asked for: the folder and the Genesys fault knobs."""

    directory: Path
    latency_ms: int = 0
    rate_429: float = 0.0
    rate_5xx: float = 0.0


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write `payload` as JSON to `path` so that readers see the old file or the new, never half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _start_s3(directory: Path) -> tuple[_Stoppable | None, dict[str, Any]]:
    """Start the S3 sandbox (moto) on 127.0.0.1, its state restored from `directory`;
    (server, endpoints entry)."""
    try:
        from reconciler.sandbox.s3_server import S3Sandbox  # noqa: PLC0415 (moto is slow to import)

        server = S3Sandbox(directory)
    except ImportError as error:
        return None, {"status": "unavailable", "reason": f"moto is not installed ({error.name or error})"}
    try:
        url = server.start()
    except OSError as error:
        return None, {"status": "unavailable", "reason": f"the S3 server did not start: {error}"}
    entry: dict[str, Any] = {
        "url": url,
        "accessKeyId": S3_ACCESS_KEY,
        "secretAccessKey": S3_SECRET_KEY,
        "region": S3_REGION,
        "state": str(server.path),
        "restored": server.restored > 0,
    }
    if server.problem is not None:
        entry["stateProblem"] = server.problem
    try:
        entry["kmsAliases"] = _seed_kms(url)
    except Exception as error:  # the archive then says which alias is missing
        log.warning("could not create the sandbox's KMS keys: %s", error)
    return server, entry


def _seed_kms(url: str) -> list[str]:
    """Create SEED_KMS_ALIASES in the emulator unless a restored state has them; the aliases."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 (slow to import; only the daemon needs it)

    created = []
    for region, alias in SEED_KMS_ALIASES:
        kms = boto3.client(
            "kms",
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
        )
        existing = {entry["AliasName"] for entry in kms.list_aliases()["Aliases"]}
        if alias not in existing:
            key_id = kms.create_key(Description=f"sandbox customer key for {alias}")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        created.append(f"{region}:{alias}")
    return created


def marketdata_entry(url: str) -> dict[str, Any]:
    """The endpoints.json entry of the market-data server at `url`."""
    return {
        "url": url,
        "dialects": {"generic-rest": url + GENERIC, "bloomberg": url + BLOOMBERG, "refinitiv": url + REFINITIV},
        "token": MARKETDATA_TOKEN,
        "clientId": MARKETDATA_CLIENT_ID,
        "clientSecret": MARKETDATA_CLIENT_SECRET,
        "tokenUrl": url + TOKEN,
        "knobsUrl": url + KNOBS,
    }


def _read_owner(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def _configure_logging(directory: Path) -> None:
    handler = logging.FileHandler(directory / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(options: ServeOptions) -> int:
    """Run the sandbox in the foreground until SIGTERM/SIGINT; the process exit code."""
    directory = options.directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"sandbox: cannot use {directory} as the sandbox folder: {error}", flush=True)
        return 1
    _configure_logging(directory)
    endpoints_path = directory / ENDPOINTS_FILE
    # One daemon per folder: the lock is held for the process's life (the OS drops it on exit).
    lock = (directory / LOCK_FILE).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log.warning("another sandbox daemon (pid %s) already serves %s", _read_owner(endpoints_path), directory)
        lock.close()
        return EXIT_FOLDER_TAKEN

    # Each service's event loop runs in its own thread: a thread waiting for the interpreter
    # gets it within 1 ms (default 5), so a busy Genesys org does not hold the feed's answers.
    sys.setswitchinterval(0.001)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log.info(
        "starting in %s (latency %d ms, 429 rate %s, 5xx rate %s)",
        directory,
        options.latency_ms,
        options.rate_429,
        options.rate_5xx,
    )
    servers: list[_Stoppable] = []
    try:
        s3, s3_entry = _start_s3(directory)  # first: the Genesys server's recording export writes to it
        if s3 is not None:
            servers.append(s3)
            log.info("s3 sandbox (moto) listening on %s, state in %s", s3_entry["url"], s3_entry["state"])
        else:
            log.warning("s3 sandbox unavailable: %s", s3_entry["reason"])
        tradesense = TradeSenseSandbox()  # before Genesys: its floor writes CDRs to it
        tradesense.start()
        servers.append(tradesense)
        log.info("tradesense sandbox listening on %s (websockets %s)", tradesense.base_url, tradesense.ws_base)
        genesys = GenesysSandbox(
            directory / GENESYS_STATE_FILE,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            latency_ms=options.latency_ms,
            rate_429=options.rate_429,
            rate_5xx=options.rate_5xx,
            archive_s3=s3_entry if s3 is not None else None,
            tradesense=tradesense,
        )
        url = genesys.start()
        servers.append(genesys)
        log.info("genesys sandbox listening on %s", url)
        marketdata = MarketDataSandbox(
            client_token=MARKETDATA_TOKEN, client_id=MARKETDATA_CLIENT_ID, client_secret=MARKETDATA_CLIENT_SECRET
        )
        marketdata_url = marketdata.start()
        servers.append(marketdata)
        log.info("market-data sandbox listening on %s", marketdata_url)
        document: dict[str, Any] = {
            "pid": os.getpid(),
            "started": utc_now_iso(),
            "services": {
                "genesys": {
                    "url": url,
                    "loginUrl": url,
                    "clientId": CLIENT_ID,
                    "clientSecret": CLIENT_SECRET,
                    "region": GENESYS_REGION,
                    "faults": {
                        "latencyMs": options.latency_ms,
                        "rate429": options.rate_429,
                        "rate5xx": options.rate_5xx,
                    },
                },
                "s3": s3_entry,
                "marketdata": marketdata_entry(marketdata_url),
                "tradesense": tradesense_entry(tradesense),
            },
        }
        write_json_atomic(endpoints_path, document)
        log.info("ready; endpoints in %s", endpoints_path)
        while not stop.wait(0.2):
            pass
    finally:
        for server in reversed(servers):
            try:
                server.stop()
            except Exception:  # one failing server must not keep the others running
                log.exception("error while stopping %s", type(server).__name__)
        if _read_owner(endpoints_path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                endpoints_path.unlink()
        log.info("stopped")
        lock.close()
    return 0
