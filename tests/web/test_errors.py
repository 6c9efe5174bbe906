"""A store connection lost while a request uses it: the caller gets a 503 it may retry (not
a 500, nothing of the query or the database's address), and the next request is served."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from atoll.server import BackgroundServer
from atoll.web.errors import install_error_handlers

SECRET_TABLE = "dataset_location_s3_bucket_private"


def test_a_connection_lost_mid_query_is_a_retryable_503(
    pg_db: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()
    install_error_handlers(app)
    busy: list[int] = []

    @app.get("/slow")
    def slow() -> dict[str, int]:
        with pg_db.connect() as conn:
            busy.append(int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()))
            conn.execute(sa.text(f"SELECT pg_sleep(30) AS {SECRET_TABLE}"))
        return {"slept": 1}

    @app.get("/quick")
    def quick() -> dict[str, int]:
        with pg_db.connect() as conn:
            return {"one": int(conn.execute(sa.text("SELECT 1")).scalar_one())}

    def cut_when_busy() -> None:
        deadline = time.monotonic() + 30
        while not busy and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # let the sleep start
        with pg_db.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": busy[0]})

    cutter = threading.Thread(target=cut_when_busy)
    with BackgroundServer(app) as url:
        # the server's logging config, set as it starts, keeps atoll's records from the root
        # logger: listen on atoll's
        logging.getLogger("atoll").addHandler(caplog.handler)
        cutter.start()
        answer = httpx.get(url + "/slow", timeout=60)
        cutter.join()
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json() == {"error": "the node's store is unreachable for a moment; try again"}
        assert httpx.get(url + "/quick", timeout=30).json() == {"one": 1}
    logging.getLogger("atoll").removeHandler(caplog.handler)
    logged = caplog.text
    assert "the store failed a request: AdminShutdown" in logged
    assert SECRET_TABLE not in logged and "127.0.0.1" not in logged and "pg_sleep" not in logged
