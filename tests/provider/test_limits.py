"""Limits before parsing: body size per route (declared or streamed), JSON depth and values,
the recursion limit; rate limits on unsigned routes; the offset bound."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atoll.config import load_settings
from atoll.errors import ConfigError, RateLimited
from atoll.node import operator_app
from atoll.provider.ratelimit import RateLimits
from atoll.server import BackgroundServer
from atoll.web.limits import EVM_RECURSION_LIMIT
from tests.helpers import Running, running_provider
from tests.homes import init_home
from tests.rawhttp import chunked, connect, request_head, send_streaming

UNSIGNED_POSTS = ["/api/services/faucet", "/api/services/initializeCompute"]
UNSIGNED_GETS = ["/api/services/nonce", "/api/services/assets"]


def test_provider_runs_with_a_sane_recursion_limit(provider: Running) -> None:
    assert sys.getrecursionlimit() <= EVM_RECURSION_LIMIT


@pytest.mark.parametrize("path", UNSIGNED_POSTS + UNSIGNED_GETS)
def test_nested_json_is_refused_and_the_server_lives(provider: Running, path: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    method = "POST" if path in UNSIGNED_POSTS else "GET"
    r = httpx.request(method, provider.url + path, content=body)
    assert r.status_code == 400
    assert r.json() == {"error": "the JSON body is nested deeper than 64 levels"}
    assert httpx.get(provider.url + "/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("path", UNSIGNED_POSTS + UNSIGNED_GETS)
def test_declared_oversize_body_is_refused_before_it_is_sent(provider: Running, path: str) -> None:
    method = "POST" if path in UNSIGNED_POSTS else "GET"
    head = {"Content-Type": "application/json", "Content-Length": str(400 << 20)}
    with connect(provider.url) as sock:
        answer = send_streaming(sock, request_head(method, path, head), [])
    assert answer.status == 413
    assert "over" in json.loads(answer.body)["error"]
    assert answer.headers["connection"] == "close"


def _zeros(total: int, size: int = 1 << 16) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"0" * size


@pytest.mark.parametrize("path", UNSIGNED_POSTS)
def test_streamed_oversize_body_is_refused_while_it_streams(provider: Running, path: str) -> None:
    head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    with connect(provider.url) as sock:
        answer = send_streaming(sock, request_head("POST", path, head), chunked(_zeros(400 << 20)))
    assert answer.status == 413
    # refused long before the 400 MB were sent (what was sent sat in socket buffers)
    assert answer.sent < 64 << 20
    assert httpx.get(provider.url + "/healthz").status_code == 200


def test_job_routes_take_larger_bodies_than_the_rest(provider: Running) -> None:
    code = "x = 1\n" * ((1 << 20) // 6 + 10)  # raw code just over the 1 MiB the service takes
    body = {
        "dataset": {"did": "did:atoll:x"},
        "algorithm": {"rawcode": code},
        "consumerAddress": provider.consumer.key.address,
    }
    quote = httpx.post(provider.url + "/api/services/initializeCompute", json=body)
    assert quote.status_code == 400, quote.text  # read, and refused by the service itself
    assert "raw algorithm code is limited" in quote.json()["error"]
    faucet = httpx.post(provider.url + "/api/services/faucet", json=body)
    assert faucet.status_code == 413


def test_search_offset_beyond_64_bits_is_a_400(provider: Running) -> None:
    r = httpx.get(provider.url + "/api/services/assets", params={"offset": 2**63})
    assert r.status_code == 400
    assert "offset" in r.json()["error"]
    ok = httpx.get(provider.url + "/api/services/assets", params={"offset": 2**63 - 1})
    assert ok.status_code == 200 and ok.json()["assets"] == []


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Running]:
    with running_provider(
        tmp_path / "home", rate_limit_per_ip="20/minute", rate_limit_per_address="2/minute"
    ) as running:
        yield running


def test_rate_limit_per_address_and_per_ip(limited: Running) -> None:
    a, b = limited.consumer.key.address, limited.other.key.address
    url = limited.url + "/api/services/nonce"
    assert [httpx.get(url, params={"userAddress": a}).status_code for _ in range(2)] == [200] * 2
    refused = httpx.get(url, params={"userAddress": a})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"].startswith(f"too many nonce requests for {a}")
    # another address is counted on its own; the faucet has its own count
    assert httpx.get(url, params={"userAddress": b}).status_code == 200
    codes = [httpx.get(limited.url + "/api/services/assets").status_code for _ in range(25)]
    assert codes == [200] * 20 + [429] * 5
    over = httpx.get(limited.url + "/api/services/assets")
    assert "from this address (IP): at most 20 per minute" in over.json()["error"]
    # the SDK turns the refusal into its own type, with the seconds to wait
    with pytest.raises(RateLimited, match="at most 20 per minute") as caught:
        limited.consumer.search("anything")
    assert 0 < caught.value.retry_after <= 60
    # signed routes and liveness are not limited here
    assert limited.consumer.jobs() == []
    assert httpx.get(limited.url + "/healthz").status_code == 200


def test_rate_limit_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="rate limit"):
        RateLimits("many per minute", "")
    assert RateLimits("", "").per_ip == []


def test_the_standalone_operator_limits_bodies_before_checking_callers(tmp_path: Path) -> None:
    init_home(tmp_path / "op")
    app = operator_app(load_settings(tmp_path / "op"), {"0x" + "1" * 40})
    with BackgroundServer(app) as url:
        nested = httpx.post(url + "/api/v1/operator/compute", content=b"[" * 100_000)
        assert nested.status_code == 400
        assert "nested deeper" in nested.json()["error"]
        head = {"Content-Length": str(400 << 20)}
        with connect(url) as sock:
            answer = send_streaming(
                sock, request_head("POST", "/api/v1/operator/compute", head), []
            )
        assert answer.status == 413
        assert httpx.get(url + "/healthz").status_code == 200


@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)])
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: tuple[str, ...]
) -> None:
    with running_provider(
        tmp_path / "home",
        rate_limit_per_ip="3/minute",
        rate_limit_per_address="",
        trusted_proxies=trusted,
    ) as running:
        url = running.url + "/api/services/assets"
        codes = [
            httpx.get(url, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(6)
        ]
    if trusted:
        # behind the operator's proxy: each client the proxy names has its own count
        assert codes == [200] * 6
    else:
        # nobody is trusted by default: a caller cannot pick the IP it is counted against
        assert codes == [200] * 3 + [429] * 3


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'trusted_proxies': '\\*' is not an IP address"):
        load_settings(tmp_path, trusted_proxies=("*",))
    assert load_settings(tmp_path, trusted_proxies=("10.0.0.0/8", "::1")).trusted_proxies
