"""``/metrics`` in the Prometheus text format, and one access-log line per request.

Requests are counted and timed by route template (``/api/services/assets/{did}``), never by
raw path, so that a stranger cannot grow the series without bound. Job figures are read from
the job store when scraped, so that they are right after a restart and across workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as render
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoll.engine.jobstore import JobStore
from atoll.models.status import JobStatus

access_log = logging.getLogger("atoll.access")

#: job durations in seconds: a job runs from seconds to the hour a compute service allows
JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)


class JobCollector(Collector):
    """Jobs by status, the queue's depth and the run time of ended jobs, from the store."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def collect(self) -> Iterator[Metric]:
        counts = self.jobs.count_by_status()
        total, seconds, cumulative = self.jobs.run_times(JOB_BUCKETS)
        by_status = GaugeMetricFamily(
            "atoll_jobs", "Jobs in the store by status", labels=["status"]
        )
        for status in JobStatus:
            by_status.add_metric([status.name.lower()], counts.get(int(status), 0))
        yield by_status
        yield GaugeMetricFamily(
            "atoll_job_queue_depth",
            "Jobs waiting for a slot to start",
            value=counts.get(int(JobStatus.QUEUED), 0),
        )
        buckets = [(str(b), int(n)) for b, n in zip(JOB_BUCKETS, cumulative, strict=True)]
        yield HistogramMetricFamily(
            "atoll_job_duration_seconds",
            "Run time of ended jobs, from the start of their last attempt to their end",
            buckets=[*buckets, ("+Inf", int(total))],
            sum_value=float(seconds),
        )


class Metrics:
    def __init__(self, jobs: JobStore | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "atoll_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "atoll_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route"],
            registry=self.registry,
        )
        if jobs is not None:
            self.registry.register(JobCollector(jobs))

        self._app: FastAPI | None = None
        self._static_paths: frozenset[str] | None = None

    @property
    def static_paths(self) -> frozenset[str]:
        """API paths without parameters: a request refused before routing still names one.
        Read at the first request, when every route is in place."""
        if self._static_paths is None:
            paths = self._app.openapi()["paths"] if self._app is not None else {}
            self._static_paths = frozenset(p for p in paths if "{" not in p)
        return self._static_paths

    def install(self, app: FastAPI) -> None:
        """Count ``app``'s requests and serve /metrics."""
        self._app = app
        app.add_middleware(MetricsMiddleware, metrics=self)
        registry = self.registry

        @app.get("/metrics", include_in_schema=False)
        def metrics() -> Response:
            return Response(render(registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    def _template(self, scope: Scope) -> str:
        """The route's template; "other" for what no API route answers (docs, 404s, requests
        refused before routing), so that the series stay few whatever paths are sent."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if scope.get("path") in self.metrics.static_paths:
            return str(scope["path"])
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            elapsed = time.perf_counter() - start
            route = self._template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            client = scope.get("client")
            # the path without its query string: queries carry signatures and job ids
            access_log.info(
                '%s - "%s %s" %d %.1f ms',
                client[0] if client else "-",
                method,
                # as sent, so that a percent-encoded line break cannot forge a log line
                bytes(scope.get("raw_path") or b"").decode("ascii", "replace"),
                status,
                elapsed * 1000,
            )
