"""How fast a real ``atoll serve`` refuses hostile bodies on an unsigned route, against a
small malformed request to the same route as the baseline (both answered 4xx).

Starts ``atoll serve`` in a subprocess on a loopback port, then for each kind of body sends
it ``--runs`` times and prints median, p95 and the ratio of the medians to the baseline's,
and the server's memory (RSS) before and after.

    .venv/bin/python -m bench.bench_hostile --runs 10   # from the repository root
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from bench.subprocess_node import atoll_serve, pct, rss_mb
from tests.rawhttp import chunked, connect, request_head, send_streaming

ROUTE = "/api/services/initializeCompute"
BIG = 400 << 20


def _zeros(total: int) -> Iterator[bytes]:
    chunk = b"0" * (1 << 16)
    for _ in range(total // len(chunk)):
        yield chunk


def _many_keys(count: int) -> Iterator[bytes]:
    yield b"{"
    for start in range(0, count, 10_000):
        part = ",".join(f'"k{i}":0' for i in range(start, min(start + 10_000, count)))
        yield (part if start == 0 else "," + part).encode()
    yield b"}"


def _timed(send: Callable[[], int], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        status = send()
        times.append(time.perf_counter() - t0)
        assert 400 <= status < 500, status
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="atoll-bench-") as tmpdir,
        atoll_serve(Path(tmpdir) / "home", ATOLL_RATE_LIMIT_PER_IP="") as (url, server, _data),
    ):
        client = httpx.Client(base_url=url)
        before = rss_mb(server.pid)
        nested = b"[" * 100_000 + b"]" * 100_000

        def raw(head: dict[str, str], body: Iterator[bytes]) -> int:
            with connect(url) as sock:
                return send_streaming(sock, request_head("POST", ROUTE, head), body).status

        streamed = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        declared = {"Content-Type": "application/json", "Content-Length": str(BIG)}
        cases: dict[str, Callable[[], int]] = {
            "baseline: small malformed body": lambda: (
                client.post(ROUTE, json={"consumerAddress": "x"}).status_code
            ),
            "nested 100,000 deep": lambda: client.post(ROUTE, content=nested).status_code,
            "400 MB, Content-Length": lambda: raw(declared, _zeros(BIG)),
            "400 MB, chunked": lambda: raw(streamed, chunked(_zeros(BIG))),
            "10 million keys, chunked": lambda: raw(streamed, chunked(_many_keys(10**7))),
        }
        results = {name: _timed(send, args.runs) for name, send in cases.items()}
        after = rss_mb(server.pid)
        assert server.poll() is None, "the server died"

    base = statistics.median(results["baseline: small malformed body"])
    print(f"\ntime to a 4xx on {ROUTE}, {args.runs} runs each")
    for name, times in results.items():
        med = statistics.median(times)
        p95 = pct(times, 95)
        print(
            f"  {name:32} median {med * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms  x{med / base:.1f}"
        )
    print(f"server RSS: {before:.0f} MB before, {after:.0f} MB after")


if __name__ == "__main__":
    main()
