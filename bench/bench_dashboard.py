"""Server time to render the dashboard's review page with 1,000 held files and its jobs page
with 10,000 jobs (both paginate), against /healthz measured in the same run.

Runs a provider in this process on a loopback port (the real sandbox): one real job held for
review and one released, whose records are then copied (new job ids, older creation times)
until the reviewer has ``--held`` held files and the consumer ``--jobs`` jobs. Requests are
interleaved, so whatever else loads the machine loads each page alike; prints median and p95
per page and the ratio of medians to the baseline. Goal: each page under 200 ms.

    PYTHONPATH=. python bench/bench_dashboard.py --rounds 30 --held 1000 --jobs 10000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
from subprocess_node import pct

from atoll import signing
from atoll.db import schema
from atoll.models.ddo import ComputePolicy
from atoll.models.output_policy import OutputPolicy
from atoll.signing import Key
from tests.helpers import OPEN_DATA, running_provider

JOB_TABLES = (
    schema.jobs,
    schema.job_manifests,
    schema.job_results,
    schema.job_outcomes,
    schema.job_checks,
    schema.job_reviewers,
    schema.job_releases,
)
HELD = "open('/data/outputs/t.csv', 'w').write('city,count\\nnorth,3\\nsouth,40\\n')\n"


def copy_job(db: sa.Engine, job_id: str, copies: int) -> None:
    """``copies`` copies of the job's rows in every job table, each older than the last."""
    with db.begin() as conn:
        for table in JOB_TABLES:
            rows = [
                dict(r._mapping)
                for r in conn.execute(sa.select(table).where(table.c.job_id == job_id))
            ]
            if not rows:
                continue
            batch = []
            for k in range(copies):
                new_id = uuid.UUID(int=hash((job_id, k)) & (2**128 - 1)).hex
                for row in rows:
                    copy = {**row, "job_id": new_id}
                    if table is schema.jobs:
                        copy["created"] = row["created"] - 1 - k
                    if table is schema.job_checks:
                        copy["created"] = row["created"] - 1 - k
                    batch.append(copy)
            conn.execute(sa.insert(table), batch)


def session(http: httpx.Client, key: Key) -> None:
    challenge = http.post("/ui/cli/challenge", json={"address": key.address}).json()["challenge"]
    text = signing.message("ui-login", str(http.base_url).rstrip("/"), key.address, challenge)
    url = http.post(
        "/ui/cli/code",
        json={"address": key.address, "challenge": challenge, "signature": key.sign(text)},
    ).json()["url"]
    code = url.split("code=", 1)[1]
    assert http.post("/ui/login/code", data={"code": code}).status_code == 303


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--held", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_provider(Path(tmp) / "home") as p:
        checked = ComputePolicy(allowRawAlgorithm=True, outputPolicy=OutputPolicy(mode="auto"))
        held_did = p.dataset(name="bench-held", policy=checked)
        open_did = p.dataset(name="bench-open", policy=OPEN_DATA)
        held = p.consumer.wait(p.consumer.start(held_did, rawcode=HELD).jobId, 60)
        done = p.consumer.wait(p.consumer.start(open_did, rawcode="print(1)\n").jobId, 60)
        db = p.node.db
        copy_job(db, held.jobId, args.held - 1)
        copy_job(db, done.jobId, args.jobs - args.held - 1)
        with db.connect() as conn:
            n_jobs = conn.execute(sa.select(sa.func.count()).select_from(schema.jobs)).scalar()
            n_held = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.job_releases)
                .where(schema.job_releases.c.state == "held")
            ).scalar()
        print(f"{n_jobs} jobs of the consumer, {n_held} files held for the reviewer")
        assert p.publisher.key is not None and p.consumer.key is not None
        with (
            httpx.Client(base_url=p.url, timeout=60) as pub,
            httpx.Client(base_url=p.url, timeout=60) as con,
        ):
            session(pub, p.publisher.key)
            session(con, p.consumer.key)
            pages = {
                "/healthz (baseline)": (con, "/healthz"),
                f"review page ({n_held} held)": (pub, "/ui/review"),
                f"jobs page ({n_jobs} jobs)": (con, "/ui/jobs"),
            }
            for client, path in pages.values():  # warm: the first view ends nothing twice
                assert client.get(path).status_code == 200
            times: dict[str, list[float]] = {name: [] for name in pages}
            for _ in range(args.rounds):
                for name, (client, path) in pages.items():
                    t = time.perf_counter()
                    answer = client.get(path)
                    times[name].append((time.perf_counter() - t) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
        base = statistics.median(times["/healthz (baseline)"])
        for name, ms in times.items():
            median = statistics.median(ms)
            print(
                f"  {name:<28} median {median:7.1f} ms   p95 {pct(ms, 95):7.1f} ms"
                f"   x{median / base:6.1f} of the baseline   (n={len(ms)})"
            )


if __name__ == "__main__":
    main()
