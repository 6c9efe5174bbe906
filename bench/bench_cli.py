"""What a user waits for at the command line: ``atoll --help``, ``atoll compute list`` and a
trivial ``atoll compute run … --wait`` against a real ``atoll serve``, each a fresh process,
beside ``python3 -c pass`` (the interpreter's own start) measured in the same run.

The commands take turns, round after round, so that a noisy machine weighs on all of them
alike; the CPU time each command's process used is printed too, a figure a loaded machine
bends less than the wall clock. ``compute run`` is timed with an agreement ordered beforehand
(the job path) and without one (the command orders and pays for its own agreement first).

    python bench/bench_cli.py --runs 20
    python bench/bench_cli.py --atoll /path/to/client-only/venv/bin/atoll   # `pip install atoll`
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from subprocess_node import atoll_serve, pct

from atoll.models.ddo import ComputePolicy, Metadata
from atoll.sdk import ProviderClient
from atoll.signing import Key

ALGORITHM = "open('/data/outputs/out.txt', 'w').write('ok')\n"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall clock and CPU time (user + system) of one run of ``command``."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True)
    elapsed, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return elapsed, cpu


def show(name: str, values: list[float], cpu: list[float], base: float, base_cpu: float) -> None:
    med, med_cpu = statistics.median(values), statistics.median(cpu)
    print(
        f"{name:<32} median {med * 1000:7.1f} ms   p95 {pct(values, 95) * 1000:7.1f} ms"
        f"   {med / base:5.1f}x python   cpu {med_cpu * 1000:6.1f} ms"
        f"   {med_cpu / base_cpu:5.1f}x python   (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="rounds of every command")
    parser.add_argument(
        "--atoll",
        default=str(Path(sys.executable).with_name("atoll")),
        help="the atoll command to time (default: this environment's)",
    )
    args = parser.parse_args()
    atoll = args.atoll

    with tempfile.TemporaryDirectory(prefix="atoll-bench-") as tmpdir:
        tmp = Path(tmpdir)
        home = tmp / "home"
        with atoll_serve(home) as (url, _server, root):
            data = root / "data.csv"
            data.write_text("a\n1\n")
            with ProviderClient(url, Key.load(home / "key")) as publisher:
                did = publisher.publish(
                    Metadata(name="bench", type="dataset"),
                    [str(data)],
                    ComputePolicy(allowRawAlgorithm=True, maxJobs=10_000),
                ).id
            key_file = tmp / "consumer.key"
            consumer_key = Key.generate()
            consumer_key.save(key_file)
            with ProviderClient(url, consumer_key) as consumer:
                consumer.faucet()
                agreement = consumer.order(did)
            algorithm = tmp / "algorithm.py"
            algorithm.write_text(ALGORITHM)

            env = {**os.environ, "ATOLL_HOME": str(home)}
            client = ["--provider", url, "--key", str(key_file)]
            run = [atoll, "compute", "run", did, "--algorithm", str(algorithm), "--wait"]
            commands = {
                "python3 -c pass": [sys.executable, "-c", "pass"],
                "atoll --help": [atoll, "--help"],
                "atoll compute list": [atoll, "compute", "list", *client],
                "atoll compute run --wait": [*run, "--agreement", agreement, *client],
                "  … ordering its own agreement": [*run, *client],
            }
            for command in commands.values():  # warm the file cache and the provider
                timed(command, env)
            times: dict[str, list[float]] = {name: [] for name in commands}
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, command in commands.items():
                    wall, used = timed(command, env)
                    times[name].append(wall)
                    cpu[name].append(used)

    print()
    base = statistics.median(times["python3 -c pass"])
    base_cpu = statistics.median(cpu["python3 -c pass"])
    for name in commands:
        show(name, times[name], cpu[name], base, base_cpu)
    print("goals: --help ≤ 250 ms; a trivial job end to end (compute run --wait) ≤ 500 ms median")


if __name__ == "__main__":
    main()
