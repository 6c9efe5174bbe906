"""Jobs sent to the scheduler together: a lone job goes at once, jobs that come while one is
sent share the next graph (one per set of resources), and a failed send reaches every job it
held, not the ones after."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from atoll.cluster.batching import Submits
from atoll.cluster.executor import DaskExecutor
from atoll.cluster.worker import run_job
from atoll.engine.executor import Runtime
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log

SLOT = {"slots": 1.0, "memory_mb": 64.0}
BIG = {"slots": 1.0, "memory_mb": 4096.0}


class Client:
    """Stands in for Dask's client: records each graph (``map``) it is sent; the first one
    can be held until the test lets it go."""

    def __init__(self, hold_first: bool = False) -> None:
        self.graphs: list[tuple[list[str], dict[str, float]]] = []
        self.held = threading.Event()
        self.go = threading.Event()
        if not hold_first:
            self.go.set()
        self.fail: BaseException | None = None

    def map(
        self, fn: Any, payloads: list[str], *, key: list[str], resources: Any, pure: bool
    ) -> Any:
        assert pure is False and len(payloads) == len(key)
        self.graphs.append((list(key), dict(resources)))
        self.held.set()
        self.go.wait(30)
        if self.fail is not None:
            raise self.fail
        return [f"future of {k} ({p})" for k, p in zip(key, payloads, strict=True)]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def in_thread(submits: Submits, client: Client, key: str, res: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["future"] = submits.submit(client, f"payload {key}", key, res)  # type: ignore[arg-type]
        except Exception as e:
            out["error"] = e

    out["thread"] = threading.Thread(target=run)
    out["thread"].start()
    return out


def until(check: Any) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_job_that_comes_alone_is_sent_at_once_in_a_graph_of_its_own(sleeps: list[float]) -> None:
    client = Client()
    submits = Submits(lambda p: p, gather=60.0)
    future = submits.submit(client, "payload a", "a", SLOT)  # type: ignore[arg-type]
    assert future == "future of a (payload a)"
    assert client.graphs == [(["a"], SLOT)]
    assert sleeps == []


def test_a_job_a_moment_after_a_graph_waits_at_most_the_gathering_time(
    sleeps: list[float],
) -> None:
    client = Client()
    submits = Submits(lambda p: p, gather=60.0)
    submits.submit(client, "payload a", "a", SLOT)  # type: ignore[arg-type]
    submits.submit(client, "payload b", "b", SLOT)  # type: ignore[arg-type]
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 60.0
    assert [g for g, _ in client.graphs] == [["a"], ["b"]]


def test_jobs_that_come_while_one_is_sent_share_a_graph_per_set_of_resources(
    sleeps: list[float],
) -> None:
    client = Client(hold_first=True)
    submits = Submits(lambda p: p, gather=0.0)
    first = in_thread(submits, client, "a", SLOT)
    assert client.held.wait(30)
    later = [in_thread(submits, client, k, r) for k, r in [("b", SLOT), ("c", BIG), ("d", SLOT)]]
    until(lambda: submits.waiting == 3)
    client.go.set()
    for t in [first, *later]:
        t["thread"].join(30)
    assert client.graphs == [(["a"], SLOT), (["b", "d"], SLOT), (["c"], BIG)]
    # each job is given its own task's future
    assert [t["future"] for t in later] == [f"future of {k} (payload {k})" for k in "bcd"]
    assert (submits.graphs, submits.jobs) == (3, 4)


def test_a_failed_send_reaches_every_job_it_held_and_the_next_jobs_are_sent(
    sleeps: list[float],
) -> None:
    client = Client(hold_first=True)
    client.fail = ConnectionError("the scheduler went away")
    submits = Submits(lambda p: p, gather=0.0)
    first = in_thread(submits, client, "a", SLOT)
    assert client.held.wait(30)
    later = [in_thread(submits, client, k, SLOT) for k in "bc"]
    until(lambda: submits.waiting == 2)
    client.go.set()
    for t in [first, *later]:
        t["thread"].join(30)
    assert all(isinstance(t.get("error"), ConnectionError) for t in [first, *later])
    client.fail = None
    assert submits.submit(client, "payload d", "d", SLOT) == "future of d (payload d)"  # type: ignore[arg-type]


def test_jobs_sent_in_one_graph_each_run_their_own_code_on_the_cluster(
    dask_executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    submits = Submits(run_job, gather=1.0)
    # as if a graph had just gone out: the four jobs below come under load and are gathered
    submits._last = time.monotonic()
    monkeypatch.setattr(dask_executor, "_submits", submits)
    conformance = ExecutorConformance()
    specs = [
        conformance.spec(
            tmp_path, Runtime(PYTHON), f"open('/data/outputs/n', 'w').write('{n}')", limits=LIMITS
        )
        for n in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        executions = list(pool.map(lambda s: dask_executor.start(s, Log()), specs))
    try:
        assert (submits.graphs, submits.jobs) == (1, 4)
        for n, (spec, execution) in enumerate(zip(specs, executions, strict=True)):
            assert execution.wait().exit_code == 0
            assert (spec.outputs_dir / "n").read_text() == str(n)
    finally:
        for execution in executions:
            execution.release()
