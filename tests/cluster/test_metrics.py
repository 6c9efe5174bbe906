"""``/metrics`` of a real ``atoll worker`` process: its jobs by node and status, its slots and
their use, and its caches, read while a job runs on it and after."""

from __future__ import annotations

import dataclasses
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from atoll.cluster.executor import DaskExecutor
from atoll.engine.executor import ExitReason, Runtime
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log

from .conftest import BIG_JOB_MB, BigWorker

MIB = 1024**2


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_workers_metrics_count_its_jobs_slots_and_caches(
    big_worker: BigWorker, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    node = big_worker.name
    before = scrape(big_worker.metrics_url)
    assert value(before, "atoll_worker_slots", node=node) == 2
    assert value(before, "atoll_worker_jobs_running", node=node) == 0
    assert value(before, "atoll_worker_draining", node=node) == 0
    for cache in ("sources", "images"):
        assert ("atoll_worker_cache_bytes", frozenset({("node", node), ("cache", cache)})) in before

    # more memory than the session's workers advertise: it runs on the big worker only
    limits = dataclasses.replace(LIMITS, memory_bytes=BIG_JOB_MB * MIB)
    code = "print('started', flush=True)\nimport time\ntime.sleep(60)"
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), code, limits=limits)
    log = Log()
    execution = dask_executor.start(spec, log)
    try:
        assert log.wait_for(b"started")
        during = scrape(big_worker.metrics_url)
        assert value(during, "atoll_worker_jobs_total", node=node, status="started") == 1
        assert value(during, "atoll_worker_jobs_running", node=node) == 1
        assert value(during, "atoll_worker_slots_used", node=node) == 1
        execution.cancel()
        assert execution.wait().reason is ExitReason.STOPPED
    finally:
        execution.release()
    after = scrape(big_worker.metrics_url)
    assert value(after, "atoll_worker_jobs_total", node=node, status="stopped") == 1
    assert value(after, "atoll_worker_jobs_total", node=node, status="started") == 1
    assert value(after, "atoll_worker_jobs_running", node=node) == 0
    assert value(after, "atoll_worker_slots_used", node=node) == 0
