"""Download throughput of the data access service against a plain HTTP file server.

One file (1 GiB by default) is published with an access offer on a real ``atoll serve``
(a subprocess on loopback), and served as well by ``python -m http.server`` from the same
directory, in the same run. Each round downloads it once from each (the access service with
a fresh signed request under an access agreement ordered beforehand, outside the timing) and
discards the bytes; the client is the same httpx loop for both.

    python bench/bench_access.py --size-mib 1024 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from subprocess_node import atoll_serve, pct

from atoll.chain.access_ledger import DOWNLOADS_PER_FILE
from atoll.models.ddo import AccessOffer, ComputePolicy, Metadata
from atoll.sdk import ProviderClient
from atoll.server import free_port
from atoll.signing import Key

READ = 1 << 20


def drain(client: httpx.Client, url: str, params: dict[str, object] | None, size: int) -> float:
    """Seconds to read the whole body."""
    t = time.perf_counter()
    got = 0
    with client.stream("GET", url, params=params) as r:  # type: ignore[arg-type]
        if r.status_code != 200:
            r.read()
            raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")
        for chunk in r.iter_raw(READ):
            got += len(chunk)
    if got != size:
        raise SystemExit(f"{url}: {got} bytes, not {size}")
    return time.perf_counter() - t


def line(label: str, mbps: list[float]) -> str:
    return (
        f"  {label:<26} median {statistics.median(mbps):8.1f} MB/s   "
        f"p95 (slowest 5%) {pct(mbps, 5):8.1f} MB/s   (n={len(mbps)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp, atoll_serve(Path(tmp) / "home") as served:
        url, _server, data = served
        path = data / "big.bin"
        with path.open("wb") as f:
            for _ in range(0, size, 64 << 20):
                f.write(os.urandom(min(64 << 20, size - f.tell())))
        path.chmod(0o644)
        port = free_port()
        plain = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            publisher = ProviderClient(url, Key.load(Path(tmp) / "home" / "key"), timeout=600)
            consumer = ProviderClient(url, Key.generate(), timeout=600)
            consumer.faucet()
            ddo = publisher.publish(
                Metadata(name="big", type="dataset"),
                [str(path)],
                ComputePolicy(),
                access=AccessOffer(price=10**18),
            )
            plain_url = f"http://127.0.0.1:{port}/big.bin"
            access_url = f"{url}/api/services/access"
            http = httpx.Client(timeout=600)
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.head(plain_url)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("http.server did not start") from None
                    time.sleep(0.05)
            aid, left = "", 0
            base: list[float] = []
            ours: list[float] = []
            for _ in range(args.rounds):
                if left == 0:
                    aid, left = consumer.access_order(ddo.id), DOWNLOADS_PER_FILE
                left -= 1
                params = {
                    "did": ddo.id,
                    "agreementId": aid,
                    "index": 0,
                    **consumer._signed("access", ddo.id, aid, 0),
                }
                base.append(size / drain(http, plain_url, None, size) / 1e6)
                ours.append(size / drain(http, access_url, params, size) / 1e6)
        finally:
            plain.terminate()
            plain.wait()
    print(f"download of a {args.size_mib} MiB file over loopback, {args.rounds} rounds")
    print(line("plain http.server", base))
    print(line("access service", ours))
    ratio = statistics.median(ours) / statistics.median(base)
    print(f"  ratio (access / plain, medians)  {ratio:.2f}x   (goal >= 0.8x)")


if __name__ == "__main__":
    main()
