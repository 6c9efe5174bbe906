"""Operating a provider: one logged 500 on a connection that stays usable, /docs offline,
/metrics in the Prometheus format, an access log without query strings, the log level."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from atoll.db import connect
from atoll.db.schema import jobs
from atoll.engine.jobstore import JobStore
from atoll.errors import ConfigError, NotFound
from atoll.models.status import JobStatus
from atoll.provider.metrics import Metrics
from atoll.server import BackgroundServer, _config
from atoll.web.errors import install_error_handlers
from tests.helpers import Running
from tests.rawhttp import connect as raw_connect
from tests.rawhttp import read_answer, request_head


@contextmanager
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of atoll's and uvicorn's loggers, once the server has configured its logging
    (which keeps them from the root logger, where caplog listens)."""
    names = ("atoll", "uvicorn.error")
    for name in names:
        logging.getLogger(name).addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="atoll.access")
    try:
        yield caplog
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(caplog.handler)


def test_a_bug_is_one_logged_500_and_the_connection_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("detail that stays in the log")

    @app.get("/known")
    def known() -> None:
        raise NotFound("no such thing")

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    with BackgroundServer(app) as url, captured(caplog) as log, raw_connect(url) as sock:
        answers = []
        for path in ("/boom", "/known", "/ok"):
            sock.sendall(request_head("GET", path, {}))
            answers.append(read_answer(sock))
    assert [a.status for a in answers] == [500, 404, 200]
    assert answers[0].body == b'{"error": "internal error"}'
    assert answers[1].body == b'{"error":"no such thing"}'
    assert "connection" not in answers[0].headers
    logged = [r for r in log.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].getMessage() == "unhandled error: RuntimeError"


def test_docs_need_no_network(provider: Running) -> None:
    html = httpx.get(provider.url + "/docs").text
    assert "SwaggerUIBundle" in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and "//" not in "".join(links), links
    assert "cdn" not in html.lower()
    for link in links:
        r = httpx.get(provider.url + link)
        assert r.status_code == 200 and len(r.content) > 500, link


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_template(provider: Running) -> None:
    for n in range(3):
        httpx.get(provider.url + f"/api/services/assets/did:atoll:{n}")
    httpx.post(provider.url + "/api/services/faucet", content=b"[" * 100)
    r = httpx.get(provider.url + "/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)
    route = "/api/services/assets/{did}"
    labels = (("method", "GET"), ("route", route), ("status", "404"))
    assert samples[("atoll_http_requests_total", labels)] == 3
    timed = (("method", "GET"), ("route", route))
    assert samples[("atoll_http_request_duration_seconds_count", timed)] == 3
    refused = (("method", "POST"), ("route", "/api/services/faucet"), ("status", "400"))
    assert samples[("atoll_http_requests_total", refused)] == 1
    assert "did:atoll:1" not in r.text


def test_metrics_of_jobs_come_from_the_store(db_url: str) -> None:
    db = connect(db_url)
    now = time.time()
    rows = [
        ("a", JobStatus.QUEUED, None, None),
        ("b", JobStatus.QUEUED, None, None),
        ("c", JobStatus.RUNNING, now, None),
        ("d", JobStatus.FINISHED, now - 10, now),
        ("e", JobStatus.ALGORITHM_FAILED, now - 0.5, now),
    ]
    with db.begin() as conn:
        for job_id, status, started, finished in rows:
            conn.execute(
                sa.insert(jobs).values(
                    job_id=job_id,
                    owner="0x" + "0" * 40,
                    did="did:atoll:x",
                    environment="default",
                    status=int(status),
                    status_text=status.text,
                    created=now,
                    started=started,
                    finished=finished,
                    workflow={},
                    results=[],
                )
            )
    samples = _samples(generate_latest(Metrics(JobStore(db)).registry).decode())
    db.dispose()
    assert samples[("atoll_jobs", (("status", "queued"),))] == 2
    assert samples[("atoll_jobs", (("status", "running"),))] == 1
    assert samples[("atoll_jobs", (("status", "finished"),))] == 1
    assert samples[("atoll_jobs", (("status", "stopped"),))] == 0
    assert samples[("atoll_job_queue_depth", ())] == 2
    assert samples[("atoll_job_duration_seconds_count", ())] == 2
    assert samples[("atoll_job_duration_seconds_bucket", (("le", "1.0"),))] == 1
    assert samples[("atoll_job_duration_seconds_bucket", (("le", "15.0"),))] == 2
    assert samples[("atoll_job_duration_seconds_sum", ())] == pytest.approx(10.5)


def test_access_log_has_no_query_string(
    provider: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with captured(caplog) as log:
        assert provider.consumer.jobs() == []
        # the line is written once the answer has gone out: wait for it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = [r.getMessage() for r in log.records if r.name == "atoll.access"]
            signed = [line for line in lines if '"GET /api/services/compute"' in line]
            if signed:
                break
            time.sleep(0.05)
    assert len(signed) == 1 and signed[0].endswith(" ms") and " 200 " in signed[0]
    assert not any("signature" in line or "?" in line for line in lines)


def test_log_level_is_checked() -> None:
    with pytest.raises(ConfigError, match="log level 'loud'"):
        _config(FastAPI(), "127.0.0.1", 0, "loud")
    config = _config(FastAPI(), "127.0.0.1", 0, "debug")
    assert config.log_config["loggers"]["atoll"]["level"] == "DEBUG"  # type: ignore[index]


def test_serve_refuses_an_unknown_log_level_before_starting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "atoll", "serve", "--log-level", "loud"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ATOLL_HOME": str(tmp_path / "home")},
    )
    assert result.returncode != 0
    assert "log level 'loud': choose one of critical, error, warning, info, debug" in (
        result.stdout + result.stderr
    )
    assert "Traceback" not in result.stderr
