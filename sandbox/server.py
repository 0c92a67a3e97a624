"""Run an ASGI app on a loopback port in a background thread.

Tests, benchmarks and `calsync demo` start the sandboxes (and calsync's own API) this way so
that the real client libraries talk to them over real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn

Lifespan = Literal["auto", "on", "off"]


@dataclass
class ServedApp:
    """An app being served on 127.0.0.1; `base_url` has no trailing slash."""

    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread = field(repr=False)
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.scheme == "https":
            # An idle TLS keep-alive connection would hold a graceful shutdown for ~10 s while
            # waiting for the client's close_notify; a test server need not wait for it.
            self.server.force_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServedApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    lifespan: Lifespan = "on",
) -> ServedApp:
    """Serve `app` on `host:port` (0 picks a free port) and return once it accepts connections.
    With a certificate and key it serves HTTPS. A second server of an app already served runs
    with `lifespan="off"`: the app's startup and shutdown belong to the first."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets created that way, and
    # without it every request stalls ~40 ms on Nagle plus delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan=lifespan, access_log=False,
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"serve:{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{bound_port} did not start")
        time.sleep(0.01)
    scheme = "https" if ssl_certfile else "http"
    return ServedApp(host=host, port=bound_port, server=server, thread=thread, scheme=scheme)

def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free on loopback, else any free port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")
