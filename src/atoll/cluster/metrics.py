"""``/metrics`` of an ``atoll worker``, in the Prometheus text format (the provider's library):
its jobs by node and status, its slots and their use, whether it is draining, and the size of
its caches.

Every series carries the node's name, so that one scrape configuration covers every worker and
a dashboard sums or splits them. Job counts are kept from the job events the worker posts
(started, refused, the end's reason); everything else is read when scraped.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from atoll.cluster.worker import AtollWorkerPlugin

#: a cache's name, and how to read its size in bytes
CacheSize = tuple[str, Callable[[], int]]


def event_status(event: dict[str, Any]) -> str | None:
    """The status a job event counts for: ``started``, ``refused`` or the end's reason."""
    if "started" in event:
        return "started"
    if "refused" in event:
        return "refused"
    end = event.get("end")
    if isinstance(end, dict):
        return str(end.get("reason", "unknown"))
    return None


@dataclass
class NodeState:
    """What the worker's process knows of itself beyond its jobs: its slots, and whether
    it is draining (:mod:`atoll.cluster.drain`)."""

    slots: int
    draining: bool = False


class WorkerCollector(Collector):
    """The series of one worker; see the module's text."""

    def __init__(
        self,
        node: str,
        plugin: AtollWorkerPlugin,
        state: NodeState,
        caches: tuple[CacheSize, ...] = (),
    ) -> None:
        self.node = node
        self.plugin = plugin
        self.state = state
        self.caches = caches
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        plugin.listeners.append(self.observe)

    def observe(self, event: dict[str, Any]) -> None:
        status = event_status(event)
        if status is not None:
            with self._lock:
                self._counts[status] += 1

    def collect(self) -> Iterator[Metric]:
        node = [self.node]
        jobs = CounterMetricFamily(
            "atoll_worker_jobs",
            "Job events on this worker since it started: started, refused, or how they ended",
            labels=["node", "status"],
        )
        with self._lock:
            counts = dict(self._counts)
        for status, count in sorted(counts.items()):
            jobs.add_metric([self.node, status], count)
        yield jobs
        running = self.plugin.running
        for name, text, value in (
            ("atoll_worker_slots", "Jobs this worker runs at once", self.state.slots),
            (
                "atoll_worker_slots_used",
                "Slots held by running jobs",
                min(running, self.state.slots),
            ),
            ("atoll_worker_jobs_running", "Jobs on this worker until their release", running),
            (
                "atoll_worker_draining",
                "1 while the worker takes no new job",
                int(self.state.draining),
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["node"])
            gauge.add_metric(node, value)
            yield gauge
        caches = GaugeMetricFamily(
            "atoll_worker_cache_bytes", "Bytes held by this node's caches", labels=["node", "cache"]
        )
        for cache, size in self.caches:
            caches.add_metric([self.node, cache], size())
        yield caches


def serve_metrics(collector: WorkerCollector, host: str, port: int) -> Callable[[], None]:
    """Serve ``/metrics`` on ``host:port`` in a thread of its own; returns its stop."""
    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
