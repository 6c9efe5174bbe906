"""The environment queues: a job waits for a slot, expires when it waits too long, and the
deadlines of started jobs do not pile up."""

from __future__ import annotations

import threading
import time

from atoll.engine.queue import STALE_SLACK, EnvironmentQueues
from atoll.models.environment import Environment

ENV = Environment(id="one", max_jobs=1)


def test_started_jobs_leave_no_deadlines_behind() -> None:
    ran: list[str] = []
    done = threading.Event()
    jobs = 1000

    def run(job_id: str) -> None:
        ran.append(job_id)
        if len(ran) == jobs:
            done.set()

    queues = EnvironmentQueues([ENV], run, lambda _job: None)
    try:
        far = time.time() + 3600
        for i in range(jobs):
            queues.submit("one", f"job-{i}", far)
        assert done.wait(60)
        # an hour's deadlines of started jobs would be a thousand entries
        assert queues.deadlines() <= STALE_SLACK + 1
        assert ran == [f"job-{i}" for i in range(jobs)]
    finally:
        queues.shutdown()


def test_a_job_that_waits_too_long_expires_and_a_started_one_does_not() -> None:
    release = threading.Event()
    expired: list[str] = []
    started: list[str] = []

    def run(job_id: str) -> None:
        started.append(job_id)
        if job_id == "busy":
            release.wait(30)

    queues = EnvironmentQueues([ENV], run, expired.append)
    try:
        queues.submit("one", "busy", time.time() + 0.2)
        queues.submit("one", "late", time.time() + 0.2)
        deadline = time.monotonic() + 30
        while "late" not in expired and time.monotonic() < deadline:
            time.sleep(0.02)
        # "busy" started before its deadline: only the job still in the queue expires
        assert expired == ["late"]
        release.set()
    finally:
        release.set()
        queues.shutdown()
    assert started[0] == "busy"
