"""A real ``atoll serve`` process against hostile bodies on every unsigned route: brackets
nested 100,000 deep, 400 MB, 10 million keys. Each gets a 4xx, the process lives on, answers
/healthz, and its memory stays bounded; its log has one access line per request and no
traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atoll.server import free_port
from tests.helpers import wait_healthy
from tests.homes import init_home
from tests.rawhttp import chunked, connect, request_head, send_streaming

ROUTES = [
    ("POST", "/api/services/faucet"),
    ("POST", "/api/services/initializeCompute"),
    ("GET", "/api/services/nonce"),
    ("GET", "/api/services/assets"),
]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    home = tmp_path / "home"
    init_home(home)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "ATOLL_HOME": str(home)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "atoll", "serve", "--port", str(port), "--log-level", "info"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, log=log)
        yield url, server, log
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def _zeros(total: int) -> Iterator[bytes]:
    chunk = b"0" * (1 << 16)
    for _ in range(total // len(chunk)):
        yield chunk


def _many_keys(count: int) -> Iterator[bytes]:
    """``{"k0":0,"k1":0,…}`` made as it is sent."""
    yield b"{"
    batch = 10_000
    for start in range(0, count, batch):
        keys = range(start, min(start + batch, count))
        part = ",".join(f'"k{i}":0' for i in keys)
        yield (part if start == 0 else "," + part).encode()
    yield b"}"


def _alive(url: str, server: subprocess.Popen[bytes]) -> None:
    assert server.poll() is None, "the server died"
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}


def test_hostile_bodies_to_every_unsigned_route(
    served: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, server, log = served
    _alive(url, server)
    baseline = _rss_mb(server.pid)
    nested = b"[" * 100_000 + b"]" * 100_000
    for method, path in ROUTES:
        r = httpx.request(method, url + path, content=nested)
        assert r.status_code == 400, (path, r.text)
        assert "nested deeper" in r.json()["error"]
        _alive(url, server)

        # 400 MB announced: refused before the body is read
        head = {"Content-Type": "application/json", "Content-Length": str(400 << 20)}
        with connect(url) as sock:
            answer = send_streaming(sock, request_head(method, path, head), _zeros(400 << 20))
        assert answer.status == 413, (path, answer)
        assert answer.sent < 64 << 20
        _alive(url, server)

        # 400 MB without a length (chunked): refused as it streams in
        head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        with connect(url) as sock:
            answer = send_streaming(
                sock, request_head(method, path, head), chunked(_zeros(400 << 20))
            )
        assert answer.status == 413, (path, answer)
        assert answer.sent < 64 << 20
        _alive(url, server)

        # 10 million keys
        with connect(url) as sock:
            answer = send_streaming(
                sock, request_head(method, path, head), chunked(_many_keys(10_000_000))
            )
        assert answer.status == 413, (path, answer)
        assert json.loads(answer.body)["error"].startswith("the request body is over")
        _alive(url, server)

    # every body above was refused before it was held whole: memory grew by far less than
    # any one of them (a 400 MB body read whole costs over a gigabyte)
    assert _rss_mb(server.pid) - baseline < 150, (baseline, _rss_mb(server.pid))
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text
    assert '"POST /api/services/faucet" 400' in text
    assert '"GET /api/services/nonce" 413' in text
    assert '"GET /healthz" 200' in text
