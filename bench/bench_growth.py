"""Does the provider grow with the jobs it has run? Memory and disk per paid job.

Starts a real ``atoll serve`` in a subprocess on a loopback port and runs paid jobs, each
under its own one-job agreement (order, lock, start, end, keeper settles), from a few
clients at a time. Prints the server's RSS idle before any job, after a warm-up and at
checkpoints, then idle at the end, and the disk used per job: all of ``ATOLL_HOME``, the
store and the embedded chain separately.

    python bench/bench_growth.py                 # 200 jobs (a few minutes)
    python bench/bench_growth.py --jobs 1000

Goals: idle RSS ≤ 150 MB and flat after the warm-up; chain growth per job reported.
"Flat" is explicit: RSS grows by at most ``FLAT_MB`` per 1,000 jobs between the warm-up and
the end, both as measured idle at those two points and as the least-squares slope of the
checkpoints; the last line is the verdict. The server's caches fill during the first few
hundred jobs (the chain's state cache, 4 MiB; the outcomes and reviews of recent jobs, 1 MiB
each), so a warm-up past them (``--warmup 300``) measures what grows without bound rather
than caches filling.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_jobs import publish_dataset
from subprocess_node import add_postgres_option, atoll_serve, disk_mb, rss_mb

from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.signing import Key

ALGORITHM = "open('/data/outputs/out.txt', 'w').write('ok')\n"
#: RSS growth per 1,000 jobs after the warm-up that still counts as flat (allocator noise)
FLAT_MB = 5.0
#: the goal for idle RSS
IDLE_GOAL_MB = 150.0


def slope_per_1000(points: list[tuple[int, float]]) -> float:
    """The least-squares slope of (jobs, MB) points, in MB per 1,000 jobs (0 for fewer than
    two distinct job counts)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var * 1000


def paid_job(client: ProviderClient, did: str) -> None:
    agreement = client.order(did)
    info = client.start(did, rawcode=ALGORITHM, agreement_id=agreement)
    info = client.wait(info.jobId, timeout=120)
    if info.status != JobStatus.FINISHED:
        raise SystemExit(f"job failed: {info.statusText}")
    client.wallet.wait_settled(agreement, timeout=120)


def files_mb(home: Path, *globs: str) -> float:
    return sum(p.stat().st_size for g in globs for p in home.glob(g) if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200, help="paid jobs after the warm-up")
    parser.add_argument("--warmup", type=int, default=20, help="paid jobs before measuring")
    parser.add_argument("--clients", type=int, default=2, help="clients at a time")
    parser.add_argument("--checkpoints", type=int, default=5, help="RSS samples on the way")
    add_postgres_option(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="atoll-bench-") as tmpdir:
        tmp = Path(tmpdir)
        home = tmp / "home"
        with atoll_serve(home, args.postgres) as (url, server, data_root):

            def disk() -> tuple[float, float, float]:
                return (
                    disk_mb(home),
                    files_mb(home, "atoll.db*"),
                    files_mb(home, "chain/chain.sqlite*"),
                )

            def idle_rss() -> float:
                time.sleep(2.0)  # let the keeper and the watchers finish their last round
                return rss_mb(server.pid)

            _, did = publish_dataset(
                url, home, data_root, name="growth", price=10**15, max_jobs=None
            )
            clients = []
            for _ in range(args.clients):
                c = ProviderClient(url, Key.generate())
                c.faucet()
                clients.append(c)
            rss_start = idle_rss()

            def run(n: int) -> None:
                with ThreadPoolExecutor(len(clients)) as pool:
                    list(pool.map(lambda i: paid_job(clients[i % len(clients)], did), range(n)))

            run(args.warmup)
            rss_warm = idle_rss()
            disk_warm = disk()
            samples: list[tuple[int, float]] = []
            step = max(1, args.jobs // args.checkpoints)
            done = 0
            t0 = time.perf_counter()
            while done < args.jobs:
                n = min(step, args.jobs - done)
                run(n)
                done += n
                samples.append((done, rss_mb(server.pid)))
            elapsed = time.perf_counter() - t0
            rss_end = idle_rss()
            disk_end = disk()

    print()
    print(f"store: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{args.jobs} paid jobs after {args.warmup} to warm up ({elapsed:.0f} s)")
    print(f"idle RSS before any job            {rss_start:7.1f} MB")
    print(f"idle RSS after the warm-up         {rss_warm:7.1f} MB")
    for n, rss in samples:
        print(f"  RSS after {n:5d} jobs              {rss:7.1f} MB")
    print(f"idle RSS at the end                {rss_end:7.1f} MB   (goal ≤ {IDLE_GOAL_MB:.0f} MB)")
    slope = (rss_end - rss_warm) / args.jobs * 1000
    fitted = slope_per_1000([(0, rss_warm), *samples])
    print(f"RSS growth after the warm-up       {slope:7.1f} MB per 1,000 jobs, idle to idle")
    print(f"                                   {fitted:7.1f} MB per 1,000 jobs, fitted")
    names = ("ATOLL_HOME in all", "store (atoll.db*)", "chain (chain.sqlite*)")
    for name, before, after in zip(names, disk_warm, disk_end, strict=True):
        per_job = (after - before) * 1e6 / args.jobs / 1000
        print(f"disk per job, {name:<22} {per_job:7.1f} KB   (now {after:.1f} MB)")
    flat = max(slope, fitted) <= FLAT_MB
    idle_ok = rss_end <= IDLE_GOAL_MB
    print(
        f"verdict: idle RSS {'met' if idle_ok else 'missed'} ({rss_end:.0f} ≤ {IDLE_GOAL_MB:.0f}"
        f" MB), {'flat' if flat else 'growing'} after {args.warmup} jobs of warm-up "
        f"(≤ {FLAT_MB:.0f} MB per 1,000 jobs: {max(slope, fitted):.1f})"
    )


if __name__ == "__main__":
    main()
