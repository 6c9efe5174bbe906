"""Time to fetch and verify a dataset from a URL and from S3, against reading (hashing) the
same file locally.

Each run of a remote source starts from an empty cache and does what a job's start does:
ask the source for its version, stream the file through the network guard into the cache
while hashing it, check the checksum, fsync and rename it into place. The URL is served by a
plain HTTP file server on loopback; S3 by moto's server on loopback (a stand-in for S3, in
this process's machine: its figure is the client side's cost plus moto's, not AWS's). A
plain GET of the file, read and dropped, shows what the transfer alone costs here.

    python bench/bench_sources.py              # 1 GiB, 3 runs each
    python bench/bench_sources.py --mib 64     # a quick run
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import urllib3
from subprocess_node import pct

from atoll.storage.cache import SourceCache
from atoll.storage.guard import Limits, SourcePolicy
from atoll.storage.interface import PublishedInput
from atoll.storage.remote import RemoteInputs, RemoteLocation
from atoll.storage.s3_client import S3Credentials, S3Location, make_client

PUBLISHER = "0x" + "ab" * 20
KEYS = S3Credentials("bench", "bench-secret")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def line(label: str, seconds: list[float], size: int, base: float) -> str:
    med = statistics.median(seconds)
    return (
        f"  {label:<28} median {med:7.2f} s   p95 {pct(seconds, 95):7.2f} s   "
        f"{size / med / 2**20:8.1f} MiB/s   ratio {med / base:5.2f}x   (n={len(seconds)})"
    )


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        left = size
        while left:
            chunk = block[: min(left, len(block))]
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def hash_locally(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def runs(
    n: int, fn: Callable[[], object], before: Callable[[], object] = lambda: None
) -> list[float]:
    out = []
    for _ in range(n):
        before()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 stand-in")
    args = parser.parse_args()
    size = args.mib << 20

    work = Path(tempfile.mkdtemp(prefix="atoll-bench-sources-"))
    try:
        served = work / "served"
        served.mkdir()
        data = served / "data.bin"
        sha = make_file(data, size)
        print(f"fetch and verify a {args.mib} MiB dataset ({args.runs} runs each)")

        local = runs(args.runs, lambda: hash_locally(data))
        base = statistics.median(local)
        print(line("local file (read + sha256)", local, size, base))

        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Quiet, directory=str(served))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        limits = Limits(max_bytes=size + 1, total_seconds=3600, stall_seconds=60)

        def remote(hosts: list[str]) -> RemoteInputs:
            cache = SourceCache(work / "cache", size * 2)
            return RemoteInputs(SourcePolicy(hosts, limits=limits), cache)

        def plain_get() -> None:
            with urllib3.PoolManager() as http:
                resp = http.request(
                    "GET", f"http://127.0.0.1:{port}/data.bin", preload_content=False
                )
                while resp.read(1 << 20):
                    pass

        plain = runs(args.runs, plain_get)
        print(line("HTTP GET alone (no verify)", plain, size, base))

        url_inputs = remote([f"http://127.0.0.1:{port}"])
        url_loc = RemoteLocation(PUBLISHER, url=f"http://127.0.0.1:{port}/data.bin").text()
        pub = PublishedInput(url_loc, sha, ())

        def clear_url() -> None:
            (url_inputs.cache.root / sha).unlink(missing_ok=True)

        url = runs(args.runs, lambda: url_inputs.prepare(pub, None), clear_url)
        print(line("HTTP URL (fetch + verify)", url, size, base))
        server.shutdown()

        if not args.no_s3:
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request

            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            host, s3_port = moto.get_host_and_port()
            endpoint = f"http://{host}:{s3_port}"
            loc = S3Location("bench", "data.bin", endpoint=endpoint)
            client = make_client(loc, KEYS)
            client.create_bucket(Bucket="bench")
            client.upload_file(str(data), "bench", "data.bin")
            s3_inputs = remote([f"http://127.0.0.1:{s3_port}"])
            s3_pub = PublishedInput(RemoteLocation(PUBLISHER, s3=loc, keys=KEYS).text(), sha, ())

            def clear_s3() -> None:
                (s3_inputs.cache.root / sha).unlink(missing_ok=True)

            s3 = runs(args.runs, lambda: s3_inputs.prepare(s3_pub, None), clear_s3)
            print(line("S3 stand-in (fetch + verify)", s3, size, base))
            moto.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
