"""Latency of the chain layer: one transaction, and the on-chain part of a compute job.

The job's on-chain part is: create agreement + lock payment + fulfil compute +
release escrow (four transactions, with the reads the typed API does between
them). It is measured with the consumer's token allowance already granted (four
transactions) and without it (lock_payment then approves first: five).

Backends: the embedded chain on disk (SQLite in a temporary directory) and, when
anvil is installed, anvil over JSON-RPC.

    python bench/bench_chain.py --jobs 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eth_account.signers.local import LocalAccount
from subprocess_node import pct

from atoll.chain import (
    Chain,
    Contracts,
    EmbeddedChain,
    LightChain,
    dev_accounts,
    did_bytes,
    load_artifacts,
)
from atoll.chain.anvil import Anvil, find_anvil


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def line(label: str, ms: list[float]) -> str:
    return (
        f"  {label:<34} median {statistics.median(ms):7.1f} ms   p95 {pct(ms, 95):7.1f} ms"
        f"   (n={len(ms)})"
    )


def one_job(
    c: Contracts, consumer: LocalAccount, provider: LocalAccount, did: bytes, price: int
) -> list[float]:
    """The on-chain part of one job; milliseconds per step."""
    t0 = time.perf_counter()
    aid = c.create_agreement(consumer, did, price, max_jobs=1, timeout=3600)
    t1 = time.perf_counter()
    c.lock_payment(consumer, aid)
    t2 = time.perf_counter()
    c.fulfil_compute(provider, aid, b"\x03" * 32)
    t3 = time.perf_counter()
    c.release(consumer, aid)
    t4 = time.perf_counter()
    return [(b - a) * 1000 for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4))]


def bench(name: str, chain: Chain, jobs: int, cache: Path) -> None:
    gov, publisher, provider, consumer, other = dev_accounts()[:5]
    t = time.perf_counter()
    book = Contracts.deploy(chain, gov, cache_dir=cache)
    deploy_ms = (time.perf_counter() - t) * 1000
    c = Contracts(chain, book, cache_dir=cache)
    did = did_bytes(os.urandom(32))
    c.register_did(publisher, did, b"\x01" * 32, [provider.address])
    c.faucet(consumer, 1_000 * 10**18)
    c.faucet(other, 1_000 * 10**18)
    c.approve(consumer, book.lock_payment, 2**256 - 1)
    price = 10**18

    # warm up (imports, caches)
    for _ in range(3):
        aid = c.create_agreement(consumer, did, price)
        c.lock_payment(consumer, aid)
        c.fulfil_compute(provider, aid, b"\x02" * 32)
        c.release(consumer, aid)

    transfer = [timed(lambda: c.transfer(other, publisher.address, 1)) for _ in range(jobs)]
    steps: dict[str, list[float]] = {k: [] for k in ("create", "lock", "fulfil", "release")}
    job: list[float] = []
    for _ in range(jobs):
        parts = one_job(c, consumer, provider, did, price)
        for key, ms in zip(steps, parts, strict=True):
            steps[key].append(ms)
        job.append(sum(parts))

    with_approve: list[float] = []
    for _ in range(jobs):
        c.approve(other, book.lock_payment, 0)  # lock_payment has to approve again
        with_approve.append(sum(one_job(c, other, provider, did, price)))

    aid = c.create_agreement(consumer, did, price)
    read = [timed(lambda: c.agreement(aid)) for _ in range(jobs)]
    head = chain.block_number()
    print(f"{name}  (deploying all contracts: {deploy_ms:.0f} ms; head block {head})")
    print(line("token transfer (1 tx)", transfer))
    print(line("create agreement", steps["create"]))
    print(line("lock payment (allowance granted)", steps["lock"]))
    print(line("fulfil compute", steps["fulfil"]))
    print(line("release escrow", steps["release"]))
    print(line("job on-chain part (4 tx)", job))
    print(line("job on-chain part + approve (5 tx)", with_approve))
    print(line("read agreement (6 calls)", read))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per measurement")
    parser.add_argument("--no-anvil", action="store_true", help="embedded chain only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atoll-bench-chain-") as tmp:
        cache = Path(tmp) / "contracts"
        t = time.perf_counter()
        load_artifacts(cache_dir=cache)
        print(f"compiling all contracts (first use, then cached): {time.perf_counter() - t:.1f} s")
        embedded = EmbeddedChain(Path(tmp) / "chain.sqlite")
        try:
            bench("embedded (py-evm, SQLite on disk)", embedded, args.jobs, cache)
        finally:
            embedded.close()
        if args.no_anvil:
            return
        if find_anvil() is None:
            print("anvil: not installed, skipped (npm install -g @foundry-rs/anvil)")
            return
        with Anvil() as node:
            rpc = LightChain(node.url)
            bench(f"anvil (JSON-RPC, {node.url})", rpc, args.jobs, cache)


if __name__ == "__main__":
    main()
