"""Many watchers, many submissions: does waiting cost nothing?

Starts a real ``atoll serve`` in a subprocess on a loopback port. A few consumers (each with
one agreement) submit jobs, and every job gets several watchers on its owner's key, each
long-polling its status (signed, ``wait`` + ``since``) until the end. While they wait, the
same run measures signed status requests per second against unsigned ``/healthz`` (both
fired at the same concurrency, the signed ones signed beforehand so that only the server's
work is timed). Prints errors, the time from a job's end (its ``dateFinished``) to each
watcher hearing of it, and the two request rates.

    python bench/bench_load.py                      # 500 watchers, 100 submissions
    python bench/bench_load.py --watchers 100 --jobs 20

Goals: 0 errors; job end → watcher notified p95 ≤ 250 ms; signed/healthz ≥ 0.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bench_jobs import ordering_consumer, publish_dataset
from subprocess_node import add_postgres_option, atoll_serve, rss_mb, summary

from atoll import signing
from atoll.models.status import TERMINAL
from atoll.sdk import ProviderClient
from atoll.signing import Key

TERMINAL_CODES = {int(s) for s in TERMINAL}
STATUS = "/api/services/compute"
WATCHERS_PER_CLIENT = 20


def finished_at(info: dict[str, Any]) -> float:
    return (
        datetime.strptime(info["dateFinished"], "%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(tzinfo=UTC)
        .timestamp()
    )


def status_params(key: Key, job_id: str) -> dict[str, Any]:
    nonce = key.next_nonce()
    return {
        "consumerAddress": key.address,
        "nonce": nonce,
        "signature": key.sign(signing.message("status", key.address, job_id, nonce)),
        "jobId": job_id,
    }


class Load:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.errors: list[str] = []
        self.notified: list[float] = []  # job end → this watcher got the terminal status
        self.late = 0  # watchers whose first answer was already the end (nothing to notify)
        self.active = 0
        self.peak = 0

    def error(self, what: str) -> None:
        if len(self.errors) < 1000:
            self.errors.append(what)

    async def watch(
        self, http: httpx.AsyncClient, key: Key, job_id: str, every_change: bool
    ) -> None:
        """Long-poll until the end, as ``ProviderClient.wait`` does: woken only by the end
        (or, with ``every_change``, by every status change, as a live view would be)."""
        self.active += 1
        self.peak = max(self.peak, self.active)
        since: int | None = None
        try:
            while time.monotonic() < self.deadline:
                params = status_params(key, job_id)
                params["wait"] = min(30.0, max(0.1, self.deadline - time.monotonic()))
                if since is not None and every_change:
                    params["since"] = since
                sent = time.time()
                try:
                    r = await http.get(STATUS, params=params)
                except httpx.HTTPError as exc:
                    self.error(f"watcher: {type(exc).__name__}")
                    return
                heard = time.time()
                if r.status_code != 200:
                    self.error(f"watcher: {r.status_code} {r.text[:120]}")
                    return
                info = r.json()[0]
                if info["status"] in TERMINAL_CODES:
                    ended = finished_at(info)
                    if ended < sent:
                        self.late += 1  # ended before this request: nothing to be told
                    else:
                        self.notified.append(heard - ended)
                    return
                since = info["status"]
            self.error("watcher: the job did not end before the deadline")
        finally:
            self.active -= 1


async def rate(http: httpx.AsyncClient, requests: list[dict[str, Any] | None], conc: int) -> float:
    """Requests per second: ``None`` is GET /healthz, a dict a signed status request."""
    errors = 0
    queue = list(requests)

    async def worker() -> None:
        nonlocal errors
        while queue:
            params = queue.pop()
            if params is None:
                r = await http.get("/healthz")
            else:
                r = await http.get(STATUS, params=params)
            errors += r.status_code != 200
        return None

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{errors} requests failed while measuring the request rate")
    return len(requests) / elapsed


async def run(
    url: str, clients: list[tuple[ProviderClient, str]], did: str, args: argparse.Namespace
) -> tuple[Load, list[float], list[float]]:
    load = Load(time.monotonic() + args.timeout)
    per_job = max(1, args.watchers // args.jobs)
    algorithm = (
        f"import time\ntime.sleep({args.job_seconds})\n"
        "open('/data/outputs/out.txt', 'w').write('ok')\n"
    )
    # httpx's pool looks at every connection it holds for each request it places, so a
    # client per small group of watchers (and one for the probes) keeps that cost off the
    # figures: what is measured is the server
    async with contextlib.AsyncExitStack() as stack:
        pools = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=url, limits=httpx.Limits(max_connections=None), timeout=60.0
                )
            )
            for _ in range(max(1, args.watchers // WATCHERS_PER_CLIENT))
        ]
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60.0))
        watchers: list[asyncio.Task[None]] = []
        started: list[tuple[Key, str]] = []
        gate = asyncio.Semaphore(args.submitters)

        async def submit(i: int) -> None:
            client, agreement = clients[i % len(clients)]
            async with gate:
                try:
                    info = await asyncio.to_thread(
                        client.start, did, rawcode=algorithm, agreement_id=agreement
                    )
                except Exception as exc:
                    load.error(f"submit: {type(exc).__name__}: {exc}")
                    return
            key = client.key
            assert key is not None
            started.append((key, info.jobId))
            for _ in range(per_job):
                pool = pools[len(watchers) % len(pools)]
                watch = load.watch(pool, key, info.jobId, args.every_change)
                watchers.append(asyncio.create_task(watch))

        await asyncio.gather(*(submit(i) for i in range(args.jobs)))
        print(f"submitted {len(started)} jobs; {load.active} watchers waiting")

        # request rates while the watchers wait: short alternating bursts, so that both
        # kinds meet the same moments of the run (jobs ending, watchers waking)
        healthz: list[float] = []
        signed: list[float] = []
        key, job_id = started[0]
        while load.active > 0 and len(healthz) < args.rounds:
            healthz.append(await rate(http, [None] * args.probe, args.probe_concurrency))
            presigned: list[dict[str, Any] | None] = [
                status_params(key, job_id) for _ in range(args.probe)
            ]
            signed.append(await rate(http, presigned, args.probe_concurrency))
        await asyncio.gather(*watchers)
    return load, healthz, signed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watchers", type=int, default=500, help="watchers in all")
    parser.add_argument("--jobs", type=int, default=100, help="jobs submitted")
    parser.add_argument("--consumers", type=int, default=5, help="keys the jobs are spread on")
    parser.add_argument("--submitters", type=int, default=10, help="submissions at a time")
    parser.add_argument("--job-seconds", type=float, default=0.5, help="each job's run time")
    parser.add_argument("--concurrent-jobs", type=int, default=4, help="the provider's slots")
    parser.add_argument("--probe", type=int, default=50, help="requests per rate burst")
    parser.add_argument("--probe-concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=40, help="most bursts of each kind")
    parser.add_argument(
        "--every-change", action="store_true", help="watchers wake on every status change"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    add_postgres_option(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="atoll-bench-") as tmpdir:
        tmp = Path(tmpdir)
        home = tmp / "home"
        env = {"ATOLL_MAX_CONCURRENT_JOBS": str(args.concurrent_jobs)}
        with atoll_serve(home, args.postgres, **env) as (url, server, data_root):
            _, did = publish_dataset(url, home, data_root)
            clients = [ordering_consumer(url, did) for _ in range(args.consumers)]
            idle = rss_mb(server.pid)
            load_before = os.getloadavg()[0]
            t0 = time.perf_counter()
            load, healthz, signed = asyncio.run(run(url, clients, did, args))
            elapsed = time.perf_counter() - t0
            busy = rss_mb(server.pid)

    print()
    print(f"store: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{args.jobs} submissions, {args.watchers} watchers on {args.consumers} keys")
    print(f"peak watchers waiting at once       {load.peak}")
    print(f"errors                              {len(load.errors)}   (goal 0)")
    for e in sorted(set(load.errors))[:10]:
        print(f"    {e}")
    print(f"job end → watcher notified          {summary(load.notified)}   (goal p95 ≤ 250 ms)")
    print(f"watchers that asked after the end   {load.late} (not counted above)")
    if healthz and signed:
        h, s = statistics.median(healthz), statistics.median(signed)
        n = len(healthz)
        print(f"unsigned /healthz                   {h:8.0f} req/s (median of {n} bursts)")
        print(f"signed status, no wait              {s:8.0f} req/s (median of {n} bursts)")
        print(f"ratio signed / healthz              {s / h:8.2f}x   (goal ≥ 0.5x)")
    else:
        print("request rates: not measured (every watcher had finished)")
    print(f"server RSS before / after           {idle:.0f} MB / {busy:.0f} MB")
    print(f"wall time                           {elapsed:.1f} s")
    print(f"machine load average before / after {load_before:.1f} / {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
