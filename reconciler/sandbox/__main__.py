"""`python -m reconciler.sandbox serve --dir DIR ...`: run the sandbox daemon in the foreground.

Called by: reconciler.sandbox.process.up (spawned detached) and by people who want to watch
the sandbox in a terminal. See reconciler.sandbox.daemon for what it serves.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.sandbox.daemon import ServeOptions, serve


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1")
    return value


def _latency(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a latency of 0 ms or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.sandbox", description="The recon sandbox daemon.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the sandbox in the foreground until SIGTERM/SIGINT")
    run.add_argument("--dir", required=True, type=Path, help="folder for endpoints.json, state and the log")
    run.add_argument("--latency-ms", type=_latency, default=0, help="delay added to every Genesys API call")
    run.add_argument("--rate-429", type=_rate, default=0.0, help="share of Genesys API calls answered 429")
    run.add_argument("--rate-5xx", type=_rate, default=0.0, help="share of Genesys API calls answered 503")
    arguments = parser.parse_args(argv)
    return serve(
        ServeOptions(
            directory=arguments.dir,
            latency_ms=arguments.latency_ms,
            rate_429=arguments.rate_429,
            rate_5xx=arguments.rate_5xx,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
