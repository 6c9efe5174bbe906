"""What the disclosure checks add to a job: time per job and per MB of output.

For a typical small job (a JSON of aggregates and a short log, against a 5,000-record
dataset), for an aggregate CSV (counts and income statistics per region, sex and age) and
for logs of growing size (1 KB to 1 MB, and a larger one), times
``atoll.disclosure.check_files`` ``--runs`` times and prints median and p95, beside two
baselines measured in the same run: sha256 of the same bytes (outputs and inputs: the least
any check that reads them costs) and a bare sandboxed trivial job (the floor of a job's end to
end time). The first job on a version of a dataset also parses it (kept for the next jobs):
timed apart. The goal: for outputs under 1 MB, the checks take at most 10 % of a trivial job's
end-to-end time, measured in the same run as ``bench_jobs.py`` measures it (a real ``atoll
serve``, submit → finished → result read), half before the checks are timed and half after,
so that both see the same machine (``--job-ms`` gives a figure instead). Last, jobs that
write a 1 MB log, and small jobs, are timed end to end on a node, on a dataset whose outputs
are checked and on one whose are not, taken in turn: the difference is what the checks add to
a job where they run (in the checks' own process: a long log's begun as the job's sandbox
exits, the other files' as they are kept), beside the rest of the job's end
(``--end-to-end-runs``); the goal is judged by the median of the pairs' differences.

    .venv/bin/python bench/bench_disclosure.py --runs 20
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from subprocess_node import pct

from atoll.disclosure import Candidate, check_files
from atoll.models.output_policy import OutputChecks

SIZES = [1 << 10, 10 << 10, 100 << 10, 1 << 20, 8 << 20]


def dataset(path: Path, rows: int) -> None:
    """Person-level records, as the tests' dataset."""
    rng = random.Random(1)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["patient_id", "name", "email", "dob", "sex", "region", "age", "income"])
        for i in range(rows):
            out.writerow(
                [
                    f"P{10000 + i}",
                    f"Name{i} Surname{i % 97}",
                    f"person{i}@example.org",
                    f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice("FM"),
                    rng.choice(["north", "south", "east", "west"]),
                    rng.randint(18, 90),
                    f"{rng.uniform(12000, 95000):.2f}",
                ]
            )


def log_text(size: int) -> bytes:
    """A training log of about ``size`` bytes: steps, losses, a few messages."""
    rng = random.Random(size)
    lines, total, step = [], 0, 0
    while total < size:
        step += 1
        line = f"step {step} loss {rng.random():.4f} accuracy {rng.random():.3f} lr 0.001\n"
        if step % 50 == 0:
            line = f"checkpoint written after {step} steps, region north has 1203 records\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def aggregate_csv(data: Path) -> bytes:
    """A grouped summary of the dataset, as a job releases one: count and statistics of
    income per region, sex and age (some groups small)."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    with data.open(newline="") as f:
        for row in csv.DictReader(f):
            key = (row["region"], row["sex"], row["age"])
            groups.setdefault(key, []).append(float(row["income"]))
    lines = ["region,sex,age,n,mean_income,median_income,min_income,max_income,sd_income"]
    for (region, sex, age), values in sorted(groups.items()):
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(
            f"{region},{sex},{age},{len(values)},{statistics.mean(values):.4f},"
            f"{statistics.median(values):.4f},{min(values):.2f},{max(values):.2f},{sd:.4f}"
        )
    return ("\n".join(lines) + "\n").encode()


@contextlib.contextmanager
def trivial_jobs(home: Path) -> Iterator[Callable[[int], list[float]]]:
    """A real node, and a function that runs so many trivial jobs on it, one at a time, and
    returns their end-to-end times (as ``bench_jobs.py`` measures them)."""
    from bench_jobs import trivial_job_consumer

    with trivial_job_consumer(home) as job:
        yield lambda n: [job() for _ in range(n)]


#: a small job: a JSON of aggregates and a line of log, as the small job above
SMALL_JOB = (
    "import json\n"
    "json.dump({'n': 5000, 'mean_age': 54.2}, open('/data/outputs/summary.json', 'w'))\n"
    "print('loaded 5000 records')\n"
    "open('/data/outputs/out.txt', 'w').write('ok')\n"
)


def end_to_end(home: Path, rows: int, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """A real node, and jobs that write a 1 MB log (and jobs that write a small JSON and a
    line of log) against a dataset of ``rows`` records, on two copies of it: one whose
    outputs are checked (``auto``), one whose are not (``off``), taken in turn; their
    end-to-end times (submit → finished → result read), per kind of job. What the checks add
    to a job, with everything else the node does at its end around them."""
    import inspect

    from bench_jobs import one_job
    from subprocess_node import atoll_serve

    from atoll.models.ddo import ComputePolicy, Metadata
    from atoll.models.output_policy import OutputPolicy
    from atoll.sdk import ProviderClient
    from atoll.signing import Key

    # the job makes the same log the checks are timed on above, in the sandbox
    jobs = {
        "1 MB log": (
            "import random, sys\n"
            + inspect.getsource(log_text).replace(" -> bytes", "")
            + f"\nsys.stdout.buffer.write(log_text({1 << 20}))\n"
            + "open('/data/outputs/out.txt', 'w').write('ok')\n"
        ),
        "small job": SMALL_JOB,
    }
    with atoll_serve(home) as (url, _server, root):
        data = root / "people.csv"
        dataset(data, rows)
        publisher = ProviderClient(url, Key.load(home / "key"))
        consumer = ProviderClient(url, Key.generate())
        consumer.faucet()
        orders = {}
        for mode in ("auto", "off"):
            did = publisher.publish(
                Metadata(name=f"checks {mode}", type="dataset"),
                [str(data)],
                ComputePolicy(
                    allowRawAlgorithm=True, maxJobs=10_000, outputPolicy=OutputPolicy(mode=mode)
                ),
            ).id
            orders[mode] = (did, consumer.order(did))
        times: dict[str, tuple[list[float], list[float]]] = {}
        for name, algorithm in jobs.items():
            taken: dict[str, list[float]] = {"auto": [], "off": []}
            for i in range(runs + 2):
                for mode in ("auto", "off") if i % 2 else ("off", "auto"):
                    took = one_job(consumer, *orders[mode], algorithm=algorithm)
                    if i >= 2:  # the first two of each warm the node up
                        taken[mode].append(took)
            times[name] = (taken["auto"], taken["off"])
    return times


def large_datasets(tmp: Path, rows: int, checks: OutputChecks, job_ms: float) -> None:
    """Checks against larger datasets: the first job on a version that is kept parsed, with
    and without its inputs prepared while it ran (:func:`atoll.disclosure.prepare`, which the
    provider starts with each job); and a dataset too large to keep, streamed on every job,
    for a metrics log (searched for its tokens) and for an aggregate whose groups are
    counted in it (read whole)."""
    from atoll.disclosure import inputs, prepare

    kept_rows = min(rows, 50_000)
    print(f"\nlarger datasets ({kept_rows} records kept parsed, {rows} records streamed):")
    data = tmp / "kept.csv"
    dataset(data, kept_rows)
    metrics = tmp / "metrics.log"
    metrics.write_bytes(b"epoch 12 loss 0.2201 accuracy 0.9312 f1 0.8843\n" * 20)
    job = [Candidate(0, "log", "log", metrics)]

    def new_version() -> None:
        stamp = time.time_ns()
        os.utime(data, ns=(stamp, stamp))

    first = []
    for _ in range(2):
        new_version()
        first += timed(lambda: check_files(job, [data], checks), 1)
    show(f"first job on a {data.stat().st_size >> 20} MB dataset version", first)
    prepared, after = [], []
    for _ in range(2):
        new_version()
        prepared += timed(lambda: prepare([data], checks), 1)
        after += timed(lambda: check_files(job, [data], checks), 1)
    show("  of which prepared while the job runs", prepared)
    share = statistics.median(after) * 1000 / job_ms
    show("  left to the job's end", after)
    print(f"  = {share:.1%} of a {job_ms:.0f} ms trivial job")
    large = tmp / "large.csv"
    dataset(large, rows)
    size = large.stat().st_size
    print(f"a {size >> 20} MB dataset, over the {inputs.CACHE_FILE >> 20} MB kept parsed:")
    base = statistics.median(timed(lambda: sha256_of([large]), 3))
    med = show(
        "  checks of a metrics log",
        timed(lambda: check_files(job, [large], checks), 3),
        base,
    )
    print(f"  = {med / (size / (1 << 20)) * 1000:.1f} ms per MB of dataset")
    table = tmp / "large_by_group.csv"
    table.write_bytes(aggregate_csv(data))
    grouped = [Candidate(0, "output", "by_group.csv", table)]
    med = show(
        "  checks of an aggregate CSV (groups counted)",
        timed(lambda: check_files(grouped, [large], checks), 2),
        base,
    )
    print(f"  = {med / (size / (1 << 20)) * 1000:.1f} ms per MB of dataset")


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def sha256_of(paths: list[Path]) -> None:
    for path in paths:
        hashlib.sha256(path.read_bytes()).hexdigest()


def show(name: str, values: list[float], baseline: float | None = None) -> float:
    med = statistics.median(values)
    ratio = f"   x{med / baseline:6.1f} of sha256" if baseline else ""
    print(f"{name:<44} median {med * 1000:8.1f} ms   p95 {pct(values, 95) * 1000:8.1f} ms{ratio}")
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=5000, help="records in the dataset")
    parser.add_argument(
        "--job-ms",
        type=float,
        default=0.0,
        help="a trivial job end to end, in ms (default: measured in this run)",
    )
    parser.add_argument("--no-sandbox", action="store_true", help="skip the sandbox baseline")
    parser.add_argument(
        "--end-to-end-runs",
        type=int,
        default=40,
        help="jobs of each kind timed end to end, checked and not, each (0: none)",
    )
    parser.add_argument(
        "--large-rows",
        type=int,
        default=500_000,
        help="records of the dataset too large to keep parsed (0: no larger datasets)",
    )
    args = parser.parse_args()
    checks = OutputChecks()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atoll-bench-")))
        job_times: list[float] = []
        if not args.job_ms:
            run_jobs = stack.enter_context(trivial_jobs(tmp / "node"))
            job_times += run_jobs(max(5, args.runs // 2))
            args.job_ms = statistics.median(job_times) * 1000
        data = tmp / "input.csv"
        dataset(data, args.rows)
        print(
            f"dataset: {args.rows} records, {data.stat().st_size / 1024:.0f} KB; runs {args.runs}"
        )
        if not args.no_sandbox:
            from bench_jobs import bare_sandbox

            (tmp / "sandbox").mkdir()
            show("baseline: bare sandboxed trivial job", bare_sandbox(tmp / "sandbox", args.runs))

        summary = tmp / "summary.json"
        summary.write_text('{"n": 5000, "mean_age": 54.2, "mean_income": 53511.27}\n')
        log = tmp / "log"
        log.write_bytes(b"loaded 5000 records\nfitting\nwrote 1 file\n")
        job = [
            Candidate(0, "output", "summary.json", summary),
            Candidate(0, "log", "log", log),
        ]
        assert all(f.verdict == "pass" for f in check_files(job, [data], checks).files)
        base = show(
            "sha256 of a small job's files and input",
            timed(lambda: sha256_of([summary, log, data]), args.runs),
        )
        per_job = show(
            "checks of a small job",
            timed(lambda: check_files(job, [data], checks), args.runs),
            base,
        )
        print(
            f"  = {per_job * 1000 / args.job_ms:.1%} of a {args.job_ms:.0f} ms trivial job "
            "(goal: at most 10 %)"
        )

        def first_job() -> None:
            # a new modification time is a new version of the file: parsed again, not cached
            stamp = time.time_ns()
            os.utime(data, ns=(stamp, stamp))
            check_files(job, [data], checks)

        first = show(
            "checks of the first job on a dataset version", timed(first_job, max(3, args.runs // 4))
        )
        print(f"  = {first * 1000 / args.job_ms:.1%} of a {args.job_ms:.0f} ms trivial job (once)")
        no_input = show(
            "checks of a small job, no input to compare",
            timed(lambda: check_files(job, [], checks), args.runs),
        )
        print(f"  = {no_input * 1000 / args.job_ms:.1%} of a {args.job_ms:.0f} ms trivial job")

        table = tmp / "by_group.csv"
        table.write_bytes(aggregate_csv(data))
        files = [Candidate(0, "output", "by_group.csv", table)]
        base = statistics.median(timed(lambda: sha256_of([table, data]), args.runs))
        med = show(
            f"checks of a {table.stat().st_size >> 10} KB aggregate CSV",
            timed(lambda: check_files(files, [data], checks), args.runs),
            base,
        )
        share = med * 1000 / args.job_ms
        print(
            f"  = {share:.1%} of a {args.job_ms:.0f} ms trivial job, goal "
            f"{'met' if share <= 0.1 else 'missed'}"
        )
        goals = [("the aggregate CSV", med)]

        print("\nper size of output (a log), against the same dataset:")
        for size in SIZES:
            out = tmp / f"log{size}"
            out.write_bytes(log_text(size))
            files = [Candidate(0, "log", "log", out)]
            runs = args.runs if size <= 1 << 20 else max(3, args.runs // 4)
            base = statistics.median(timed(lambda out=out: sha256_of([out, data]), runs))
            med = show(
                f"checks of a {size >> 10} KB log",
                timed(lambda files=files: check_files(files, [data], checks), runs),
                base,
            )
            share = med * 1000 / args.job_ms
            goal = f", goal {'met' if share <= 0.1 else 'missed'}" if size <= 1 << 20 else ""
            if size <= 1 << 20:
                goals.append((f"a {size >> 10} KB log", med))
            print(f"  = {share:.1%} of a {args.job_ms:.0f} ms trivial job{goal}")
            if size >= 100 << 10:
                print(f"  = {med / (size / (1 << 20)) * 1000:.0f} ms per MB of output")
        if args.large_rows:
            large_datasets(tmp, args.large_rows, checks, args.job_ms)
        if args.end_to_end_runs:
            print("\njobs end to end, their outputs checked and not (taken in turn):")
            for name, (checked, unchecked) in end_to_end(
                tmp / "e2e", args.rows, args.end_to_end_runs
            ).items():
                on = show(f"  {name}, checked (auto)", checked)
                off = show(f"  {name}, not checked (off)", unchecked)
                pairs = [a - b for a, b in zip(checked, unchecked, strict=True)]
                print(
                    f"  = the checks add {(on - off) * 1000:.1f} ms to such a job end to end "
                    f"(median of the pairs' differences {statistics.median(pairs) * 1000:.1f} ms)"
                )
                # runs taken in turn: each pair saw the machine alike, so the median of the
                # pairs' differences is what the goal is judged by
                goals.append((f"{name}, end to end", statistics.median(pairs)))
        if job_times:
            job_times += run_jobs(max(5, args.runs // 2))
            print()
            trivial = show("trivial job end to end (submit→result)", job_times)
            print("the goals against it (all its runs, before and after the checks):")
            for name, med in [("a small job", per_job), *goals]:
                share = med / trivial
                print(
                    f"  checks of {name:<20} {share:6.1%}   goal "
                    f"{'met' if share <= 0.1 else 'missed'}"
                )


if __name__ == "__main__":
    main()
