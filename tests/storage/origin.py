"""A publisher's HTTP server for tests, real HTTP on loopback, with the ways a source can go
wrong: ``/files/NAME`` serves what ``files[NAME]`` holds (404 once removed), ``/status/N``
answers N, ``/redirect?to=URL`` redirects, ``/trickle`` sends a byte at a time, ``/stall``
sends headers and then nothing, ``/endless`` never ends, ``/gzip`` sends a compressed body."""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Origin:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.files: dict[str, bytes] = {}
        #: a status a file answers with instead of its bytes
        self.fail: dict[str, int] = {}
        #: files whose GET sends a little and then nothing, or never ends
        self.stalling: set[str] = set()
        self.endless: set[str] = set()
        #: headers (lower-case name: value) a request for a file must carry, else 401
        self.required: dict[str, str] = {}
        #: the headers of every request, in order
        self.requests: list[tuple[str, dict[str, str]]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                origin.requests.append(
                    ("HEAD " + self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                if not self.path.startswith("/files/"):
                    return self._head(405, 0)  # HEAD only for files
                name = self.path.removeprefix("/files/")
                data = origin.files.get(name)
                if name in origin.fail:
                    return self._head(origin.fail[name], 0)
                if not origin.authorized(origin.requests[-1][1]):
                    return self._head(401, 0)
                if name in origin.stalling or name in origin.endless:
                    self.send_response(200)
                    self.send_header("ETag", '"moving"')
                    self.end_headers()
                    return None
                if data is None:
                    return self._head(404, 0)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", _etag(data))
                self.end_headers()
                return None

            def do_GET(self) -> None:
                origin.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                try:
                    if path.startswith("/files/"):
                        name = path.removeprefix("/files/")
                        data = origin.files.get(name)
                        if name in origin.fail:
                            return self._answer(origin.fail[name], b"failing")
                        if not origin.authorized(origin.requests[-1][1]):
                            return self._answer(401, b"who are you")
                        if name in origin.stalling:
                            return self._stall()
                        if name in origin.endless:
                            return self._endless()
                        if data is None:
                            return self._answer(404, b"not found")
                        return self._answer(200, data, _etag(data))
                    if path.startswith("/status/"):
                        return self._answer(int(path.removeprefix("/status/")), b"no")
                    if path == "/redirect":
                        self.send_response(302)
                        self.send_header("Location", query["to"][0])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    if path == "/trickle":
                        self._head(200, 100_000)
                        for _ in range(100_000):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.05)
                        return None
                    if path == "/stall":
                        return self._stall()
                    if path == "/endless":
                        return self._endless()
                    if path == "/gzip":
                        body = gzip.compress(b"\0" * 10_000_000)
                        self.send_response(200)
                        self.send_header("Content-Encoding", "gzip")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return None
                    return self._answer(404, b"not found")
                except (BrokenPipeError, ConnectionResetError):
                    return None

            def _stall(self) -> None:
                self._head(200, 1000)
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                time.sleep(30)

            def _endless(self) -> None:
                self.send_response(200)
                self.end_headers()  # no length: it ends when the connection does
                while True:
                    self.wfile.write(b"y" * 65536)

            def _head(self, status: int, length: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _answer(self, status: int, body: bytes, etag: str = "") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorized(self, headers: dict[str, str]) -> bool:
        return all(headers.get(k) == v for k, v in self.required.items())

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


@contextmanager
def running_origin(host: str = "127.0.0.1") -> Iterator[Origin]:
    origin = Origin(host)
    try:
        yield origin
    finally:
        origin.close()
