"""A moto server over HTTP on loopback for tests: the real wire (boto3 → HTTP → moto), never
the in-process decorators. Port chosen by the OS and read back from the bound socket.

    from moto_http import moto_server
    with moto_server() as url: ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


@contextmanager
def moto_server() -> Iterator[str]:
    """Start a moto server on 127.0.0.1; its base URL; stopped on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
