"""End-to-end latency of trivial jobs over HTTP: submit → finished → result read.

Starts a real ``atoll serve`` in a subprocess on a loopback port, then measures from this
process (the consumer): sequential jobs (median, p95), throughput with 2 clients at a time,
and, in the same run, the bare sandbox start (the same trivial algorithm through the
executor alone) as the baseline.

    python bench/bench_jobs.py --runs 40
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from subprocess_node import atoll_serve, pct

from atoll.engine.executor import ExecutionSpec, Limits, Mount, Runtime
from atoll.engine.sandbox import SandboxExecutor
from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.status import JobStatus
from atoll.sdk import ProviderClient
from atoll.signing import Key

ALGORITHM = "open('/data/outputs/out.txt', 'w').write('ok')\n"


def show(name: str, values: list[float]) -> float:
    med = statistics.median(values)
    print(
        f"{name:<38} median {med * 1000:7.1f} ms   p95 {pct(values, 95) * 1000:7.1f} ms"
        f"   (n={len(values)})"
    )
    return med


def one_job(c: ProviderClient, did: str, agreement: str, algorithm: str = ALGORITHM) -> float:
    """One job end to end; ``algorithm`` writes ``ok`` to its first output."""
    t0 = time.perf_counter()
    info = c.start(did, rawcode=algorithm, agreement_id=agreement)
    info = c.wait(info.jobId, timeout=60)
    if info.status != JobStatus.FINISHED:
        raise SystemExit(f"job failed: {info.statusText}")
    assert c.result(info.jobId, 0) == b"ok"
    return time.perf_counter() - t0


@contextlib.contextmanager
def trivial_job_consumer(home: Path, **env: str) -> Iterator[Callable[[], float]]:
    """A real ``atoll serve`` (in ``home``, with ``env``) with a dataset, and a consumer whose
    one agreement covers every job: yields what runs one trivial job of that consumer and
    returns its end-to-end time in seconds (three run first, to warm the node)."""
    with atoll_serve(home, **env) as (url, _server, root):
        _, did = publish_dataset(url, home, root)
        consumer, agreement = ordering_consumer(url, did)
        for _ in range(3):
            one_job(consumer, did, agreement)
        yield lambda: one_job(consumer, did, agreement)


def publish_dataset(
    url: str,
    home: Path,
    root: Path,
    name: str = "bench",
    price: int | None = None,
    max_jobs: int | None = 100_000,
) -> tuple[ProviderClient, str]:
    """The node's publisher, and a dataset it publishes for trivial jobs: its DID. An
    agreement on it covers ``max_jobs`` jobs (None: the policy's default, one)."""
    data = root / "data.csv"
    data.write_text("a\n1\n")
    publisher = ProviderClient(url, Key.load(home / "key"))
    limit = {} if max_jobs is None else {"maxJobs": max_jobs}
    policy = ComputePolicy.model_validate({"allowRawAlgorithm": True, **limit})
    did = publisher.publish(
        Metadata(name=name, type="dataset"), [str(data)], policy, price=price
    ).id
    return publisher, did


def ordering_consumer(url: str, did: str) -> tuple[ProviderClient, str]:
    """A new consumer with tokens, and the agreement it ordered ``did`` under."""
    consumer = ProviderClient(url, Key.generate())
    consumer.faucet()
    return consumer, consumer.order(did)


def paid_jobs(
    publisher: ProviderClient, consumer: ProviderClient, root: Path, runs: int
) -> dict[str, list[float]]:
    """Each job under its own one-job agreement with a price: the whole on-chain flow."""
    data = root / "paid.csv"
    data.write_text("a\n1\n")
    did = publisher.publish(
        Metadata(name="paid", type="dataset"),
        [str(data)],
        ComputePolicy(allowRawAlgorithm=True),
        price=10**15,
    ).id
    out: dict[str, list[float]] = {"order": [], "grant": [], "settle": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        agreement = consumer.order(did)
        t1 = time.perf_counter()
        info = consumer.start(did, rawcode=ALGORITHM, agreement_id=agreement)
        t2 = time.perf_counter()
        info = consumer.wait(info.jobId, timeout=60)
        t3 = time.perf_counter()
        consumer.wallet.wait_settled(agreement)
        t4 = time.perf_counter()
        out["order"].append(t1 - t0)
        out["grant"].append(t2 - t1)
        out["settle"].append(t4 - t3)
    return out


def bare_sandbox(tmp: Path, runs: int) -> list[float]:
    executor = SandboxExecutor()
    executor.check()
    code = tmp / "algo"
    code.mkdir()
    (code / "algorithm").write_text(ALGORITHM)
    times = []
    for i in range(runs):
        out, logs = tmp / f"o{i}", tmp / f"l{i}"
        out.mkdir()
        logs.mkdir()
        spec = ExecutionSpec(
            job_id=f"bench-bare-{i}",
            runtime=Runtime(Path("/usr/bin/python3")),
            args=["/data/transformations/algorithm"],
            mounts=[Mount(code, "/data/transformations")],
            env={},
            outputs_dir=out,
            logs_dir=logs,
            limits=Limits(wall_seconds=30),
        )
        t0 = time.perf_counter()
        execution = executor.start(spec, lambda _chunk: None)
        result = execution.wait()
        times.append(time.perf_counter() - t0)
        execution.release()
        assert result.exit_code == 0, result
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40, help="sequential jobs to time")
    parser.add_argument("--parallel-jobs", type=int, default=40, help="jobs for the 2-client run")
    parser.add_argument("--paid-runs", type=int, default=15, help="jobs each with an agreement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="atoll-bench-") as tmpdir:
        tmp = Path(tmpdir)
        home = tmp / "home"
        with atoll_serve(home, ATOLL_MAX_CONCURRENT_JOBS="2") as (url, _server, root):
            publisher, did = publish_dataset(url, home, root)
            # one agreement covers every job of a client: these figures are the job path's;
            # the on-chain part (order, grant, settle) is measured by bench_chain.py
            consumer, agreement = ordering_consumer(url, did)
            for _ in range(3):
                one_job(consumer, did, agreement)
            seq = [one_job(consumer, did, agreement) for _ in range(args.runs)]

            clients, orders = zip(*(ordering_consumer(url, did) for _ in range(2)), strict=True)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                per_client = args.parallel_jobs // 2
                futures = [
                    pool.submit(lambda c=c, a=a: [one_job(c, did, a) for _ in range(per_client)])
                    for c, a in zip(clients, orders, strict=True)
                ]
                par = [t for f in futures for t in f.result()]
            elapsed = time.perf_counter() - t0
            paid = paid_jobs(publisher, consumer, root, args.paid_runs)
        bare = bare_sandbox(tmp, args.runs)

    print()
    job_med = show("end-to-end job (submit→result), 1 client", seq)
    show("end-to-end job, 2 clients at a time", par)
    bare_med = show("bare sandbox start (same algorithm)", bare)
    print(f"{'throughput, 2 at a time':<38} {len(par) / elapsed:7.1f} jobs/s")
    print(f"{'ratio job / bare sandbox (median)':<38} {job_med / bare_med:7.2f}x")
    print("goal: median ≤ 150 ms and ≤ 10x the bare sandbox start")
    print()
    print("paid jobs, through the provider's JSON-RPC to its embedded chain:")
    show("  order (create agreement + lock)", paid["order"])
    show("  grant (start, agreement checked)", paid["grant"])
    show("  settle (job end → escrow released)", paid["settle"])
    onchain = [
        sum(parts) for parts in zip(paid["order"], paid["grant"], paid["settle"], strict=True)
    ]
    show("  on-chain part (order+grant+settle)", onchain)
    print("goal: on-chain part ≤ 300 ms on the embedded chain")


if __name__ == "__main__":
    main()
