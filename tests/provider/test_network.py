"""Network end to end: none by default; with a dataset that allows listed hosts, in an
environment with network, the allowed loopback host answers through the engine's proxy and
another does not; with either switch off, no network at all."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.models.ddo import ComputePolicy
from atoll.models.environment import Environment
from atoll.models.status import JobStatus
from tests.helpers import Running, require_sandbox, running_provider

PROBE = """
import json, os, socket, urllib.request
out = {"proxy": os.environ.get("HTTP_PROXY", "")}
for name, url in (("allowed", "http://127.0.0.2:%(a)d/"), ("other", "http://127.0.0.3:%(b)d/")):
    try:
        out[name] = urllib.request.urlopen(url, timeout=5).read().decode()
    except Exception as exc:
        out[name] = "refused: " + type(exc).__name__
try:
    socket.create_connection(("127.0.0.2", %(a)d), timeout=2)
    out["direct"] = "connected"
except OSError as exc:
    out["direct"] = type(exc).__name__
json.dump(out, open("/data/outputs/net.json", "w"))
"""


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.hits += 1  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


def serve(host: str) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((host, 0), Hello)
    server.hits = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[http.server.ThreadingHTTPServer, http.server.ThreadingHTTPServer]]:
    a, b = serve("127.0.0.2"), serve("127.0.0.3")
    yield a, b
    a.shutdown()
    b.shutdown()


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    require_sandbox()
    envs = (Environment(id="offline"), Environment(id="online", network=True))
    # the test's servers are on loopback: the operator lists the one jobs may reach
    with running_provider(
        tmp_path / "home", environments=envs, network_private_hosts=("127.0.0.2",)
    ) as running:
        yield running


def probe(p: Running, did: str, env: str, a: int, b: int) -> dict[str, str]:
    code = PROBE % {"a": a, "b": b}
    info = p.consumer.wait(p.consumer.start(did, rawcode=code, environment=env).jobId, timeout=60)
    assert info.status == JobStatus.FINISHED, info.statusText
    result: dict[str, str] = json.loads(p.consumer.result(info.jobId, 0))
    return result


def test_network(provider: Running, tmp_path: Path, servers) -> None:  # type: ignore[no-untyped-def]
    a, b = servers
    pa, pb = a.server_address[1], b.server_address[1]
    closed = provider.dataset(tmp_path, name="closed", price=1)
    (tmp_path / "o").mkdir()
    allowing = provider.dataset(
        tmp_path / "o",
        name="open",
        price=1,
        policy=ComputePolicy(
            allowRawAlgorithm=True, allowNetworkAccess=True, networkAllowlist=[f"127.0.0.2:{pa}"]
        ),
    )

    # denied by default: the dataset does not allow network, even in an online environment
    got = probe(provider, closed, "online", pa, pb)
    assert got["proxy"] == "" and got["allowed"].startswith("refused")
    assert got["other"].startswith("refused") and got["direct"] != "connected"
    # the dataset allows it, but the environment has no network
    got = probe(provider, allowing, "offline", pa, pb)
    assert got["allowed"].startswith("refused") and got["direct"] != "connected"
    assert a.hits == 0 and b.hits == 0  # type: ignore[attr-defined]

    # both allow: the listed host answers through the proxy, the other does not
    got = probe(provider, allowing, "online", pa, pb)
    assert got["allowed"] == "hello from 127.0.0.2"
    assert got["other"].startswith("refused")
    assert got["direct"] != "connected"  # no route around the proxy
    assert a.hits == 1 and b.hits == 0  # type: ignore[attr-defined]
