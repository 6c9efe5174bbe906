"""Shared fixtures.

Stores run on SQLite and on the real PostgreSQL named by ATOLL_TEST_POSTGRES_URL (default: the
local server, trust auth, database ``test``). Without it those cases skip, unless
ATOLL_REQUIRE_POSTGRES=1 (CI), where a missing server fails the run.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from atoll.chain.anvil import Anvil, find_anvil
from atoll.db import connect

POSTGRES_URL = os.environ.get(
    "ATOLL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_or_skip() -> None:
    try:
        sa.create_engine(POSTGRES_URL).connect().close()
    except Exception as exc:
        reason = f"PostgreSQL unavailable ({type(exc).__name__})"
        if os.environ.get("ATOLL_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and ATOLL_REQUIRE_POSTGRES=1")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """A real anvil node on a loopback port for the session. Skips without anvil, unless
    ATOLL_REQUIRE_ANVIL=1 (CI), where a missing anvil fails the run."""
    if find_anvil() is None:
        msg = "anvil is not installed (npm install -g @foundry-rs/anvil)"
        if os.environ.get("ATOLL_REQUIRE_ANVIL") == "1":
            pytest.fail(msg + " and ATOLL_REQUIRE_ANVIL=1")
        pytest.skip(msg)
    node = Anvil()
    node.start()
    try:
        yield node.url
    finally:
        node.stop()


@contextlib.contextmanager
def _scratch_postgres() -> Iterator[str]:
    """A URL of an empty schema on the test server, dropped afterwards."""
    _postgres_or_skip()
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'atoll.db'}"
        return
    with _scratch_postgres() as url:
        yield url


@pytest.fixture
def pg_db() -> Iterator[sa.Engine]:
    """A fresh, empty store on PostgreSQL alone, for what only PostgreSQL has."""
    with _scratch_postgres() as url:
        engine = connect(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[sa.Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of an S3 server for the session. A stand-in for S3 (AWS or
    any S3-compatible store), which cannot run here: moto's server mode, speaking the S3
    protocol over real HTTP on loopback, so requests go through botocore and the network
    like any other."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the S3 stand-in (:func:`s3_endpoint`); its objects are written
    with :data:`S3_TEST_KEYS`."""
    from atoll.storage.s3_client import S3Location, make_client

    name = "t-" + uuid.uuid4().hex[:20]
    make_client(S3Location(name, endpoint=s3_endpoint), S3_TEST_KEYS).create_bucket(Bucket=name)
    return name


def _s3_test_keys() -> object:
    from atoll.storage.s3_client import S3Credentials

    return S3Credentials("atoll-test-key", "atoll-test-secret")


#: the keys the S3 stand-in is used with (it accepts any)
S3_TEST_KEYS: Any = _s3_test_keys()
