"""Serving an ASGI app with uvicorn: in the foreground (``atoll serve``) or on a background
thread (the demo, tests and benchmarks talk to it over real HTTP)."""

from __future__ import annotations

import copy
import errno
import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from atoll.errors import ConfigError
from atoll.memory import start_trimming, tune_malloc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


#: third-party loggers that write locations or credentials when they debug
QUIET_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore")

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def check_log_level(log_level: str) -> None:
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log level {log_level!r}: choose one of {', '.join(LOG_LEVELS)}")


#: seconds an idle client connection is kept open: longer than Atoll's own clients keep one
#: idle (:data:`atoll.sdk.client.IDLE_CONNECTION_S`), so that a client never sends a request on
#: a connection the server is closing at that moment (which it would see fail unsent)
KEEP_ALIVE_S = 20


def _config(app: FastAPI, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    check_log_level(log_level)
    # atoll's own loggers (one access line per request among them) go where uvicorn's go
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["atoll"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    # the HTTP and S3 clients log request URLs and signed headers at debug: never louder than
    # warning, whatever the operator's level, so a dataset's location or a key stays out
    for chatty in QUIET_LOGGERS:
        log_config["loggers"][chatty] = {"level": "WARNING"}
    # uvicorn's access log off: it writes query strings, which carry signatures and job ids;
    # atoll.access writes the line without them
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config,
        access_log=False,
        # X-Forwarded-For is read only from the proxies the node's settings trust (see
        # atoll.node); uvicorn's own default would trust any process on this host
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the node is built, so that a port of 0 becomes the
    port the node records and advertises, and a port in use is said before anything starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConfigError(f"cannot listen on {host!r}: not an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def bound_port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def serve(
    app: FastAPI,
    host: str,
    port: int,
    log_level: str = "info",
    sock: socket.socket | None = None,
) -> None:
    tune_malloc()  # before the request threads start: see atoll.memory
    start_trimming()
    server = uvicorn.Server(_config(app, host, port, log_level))
    server.run(sockets=[sock] if sock is not None else None)


class BackgroundServer:
    """``with BackgroundServer(app) as url: …`` — the server runs until the block ends."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(_config(app, self.host, self.port))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the server could not start on port {self.port}")
            time.sleep(0.01)
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
