"""Status polls of jobs with many results against those of a job with one, and /healthz while
they are polled.

Runs a provider in this process on a loopback port (the real sandbox), then three jobs: one
output (the baseline), as many outputs as the cap allows, and a flood of small files past the
cap. Polls are interleaved, so whatever else loads the machine loads each job alike; prints
median and p95 per job and the ratio of medians to the baseline, and the size of each answer.

    PYTHONPATH=. python bench/bench_status.py --polls 50 --files 1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from subprocess_node import pct

from atoll.models.ddo import ComputePolicy, Metadata
from atoll.models.status import JobStatus
from tests.helpers import running_provider


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--files", type=int, default=1000, help="max_output_files")
    parser.add_argument("--flood", type=int, default=65_000, help="files of the flooding job")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_provider(
            Path(tmp) / "home",
            job_output_mb=512,
            job_memory_mb=1024,
            job_wall_seconds=120.0,
            max_output_files=args.files,
        ) as p,
    ):
        data = Path(tmp) / "data.csv"
        data.write_text("a\n1\n")
        did = p.publisher.publish(
            Metadata(name="bench", type="dataset"),
            [str(data)],
            ComputePolicy(allowRawAlgorithm=True),
        ).id
        codes = {
            "one output (baseline)": "open('/data/outputs/one', 'w').write('1')",
            f"{args.files} outputs (the cap)": (
                f"for i in range({args.files}):\n"
                "    open(f'/data/outputs/r{i:05}', 'w').write(str(i))\n"
            ),
            f"{args.flood} empty outputs (refused)": (
                f"for i in range({args.flood}):\n    open(f'/data/outputs/e{{i:06}}', 'w')\n"
            ),
        }
        jobs: dict[str, str] = {}
        for name, code in codes.items():
            info = p.consumer.wait(p.consumer.start(did, rawcode=code).jobId, timeout=300)
            if info.status not in (JobStatus.FINISHED, JobStatus.DISK_QUOTA_EXCEEDED):
                raise SystemExit(f"{name}: {info.statusText}")
            jobs[name] = info.jobId
        times: dict[str, list[float]] = {name: [] for name in jobs}
        sizes: dict[str, int] = {}
        health: list[float] = []
        for _ in range(args.polls):
            for name, job_id in jobs.items():
                t0 = time.perf_counter()
                info = p.consumer.status(job_id)
                times[name].append(time.perf_counter() - t0)
                sizes[name] = len(info.model_dump_json())
            t0 = time.perf_counter()
            httpx.get(p.url + "/healthz").raise_for_status()
            health.append(time.perf_counter() - t0)
        base = statistics.median(times["one output (baseline)"])
        for name, values in times.items():
            med = statistics.median(values)
            print(
                f"{name:<30} median {med * 1000:6.1f} ms  p95 {pct(values, 95) * 1000:6.1f} ms"
                f"  ratio {med / base:4.2f}  status {sizes[name]} bytes"
            )
        print(
            f"{'/healthz':<30} median {statistics.median(health) * 1000:6.1f} ms"
            f"  p95 {pct(health, 95) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
