"""Draining a worker: it takes no new job, lets the jobs it runs finish (until the operator
releases them), then leaves the cluster and its process ends.

A drain starts from ``atoll cluster drain NAME`` (the scheduler passes the request on to the
worker's ``atoll_drain`` handler: a fixed request, no code) or from SIGUSR1 sent to the
worker's process (a Kubernetes ``preStop`` hook). The worker then advertises no slot, so the
scheduler places no job on it while its running jobs keep theirs, and stop requests still
reach them. Dask's own retirement is not used: it closes a worker once its results are copied
elsewhere, without waiting for the tasks it runs, and those are Atoll's jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from distributed import Client
from distributed.worker import Worker

from atoll.cluster.certs import security
from atoll.cluster.metrics import NodeState
from atoll.cluster.worker import AtollWorkerPlugin

log = logging.getLogger(__name__)

#: the worker's handler a drain request calls
HANDLER = "atoll_drain"
#: how often a draining worker looks whether its last job was released
POLL_SECONDS = 0.2


class Drain:
    """The drain of one worker; :meth:`install` wires it to the worker's handler."""

    def __init__(self, worker: Worker, plugin: AtollWorkerPlugin, state: NodeState) -> None:
        self.worker = worker
        self.plugin = plugin
        self.state = state
        self._task: asyncio.Task[None] | None = None

    def install(self) -> None:
        async def handle(**kwargs: Any) -> dict[str, Any]:
            return self.start()

        self.worker.handlers[HANDLER] = handle

    def start(self) -> dict[str, Any]:
        """Begin the drain (once; a second request changes nothing) and say how many jobs
        it waits for. Runs on the worker's event loop."""
        if self._task is None:
            log.info("draining: no new job; waiting for %d running", self.plugin.running)
            self.state.draining = True
            self._task = asyncio.ensure_future(self._drain())
        return {"draining": True, "running": self.plugin.running}

    async def _drain(self) -> None:
        # no slot advertised: the scheduler places no job here; a job already waiting here
        # for a slot never gets one and is placed again elsewhere when this worker leaves
        await self.worker.set_resources(slots=0)
        while self.plugin.running:
            await asyncio.sleep(POLL_SECONDS)
        log.info("drained: leaving the cluster")
        await self.worker.close(reason="drained")


def connect(address: str, certs: Path) -> Client:
    """A client of the cluster with its client certificate; OSError or TimeoutError when
    the scheduler cannot be reached."""
    return Client(address, security=security(certs, "client"), timeout=30, set_as_default=False)


def request_drain(client: Client, name: str) -> dict[str, Any]:
    """Ask the worker called ``name`` (or at that address) to drain; returns its answer
    (``running``: the jobs it waits for). LookupError when no such worker is connected."""
    address = worker_address(client, name)
    if address is None:
        raise LookupError(f"no worker called {name} is connected to the cluster")
    scheduler = client.scheduler
    assert scheduler is not None
    answers = client.sync(
        scheduler.broadcast, msg={"op": HANDLER}, workers=[address], on_error="return"
    )
    answer = answers.get(address)
    if not isinstance(answer, dict) or "running" not in answer:
        raise LookupError(f"the worker {name} did not accept the drain")
    return answer


def worker_address(client: Client, name: str) -> str | None:
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    for address, info in workers.items():
        if name in (address, str(info.get("name"))):
            return str(address)
    return None


def wait_gone(client: Client, name: str, timeout: float) -> bool:
    """Wait until the worker called ``name`` has left the cluster; False at ``timeout``."""
    deadline = time.monotonic() + timeout
    while worker_address(client, name) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
