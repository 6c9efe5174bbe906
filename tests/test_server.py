"""How the server is configured: third-party clients never log at debug, and idle connections
are kept longer than Atoll's clients keep them."""

from __future__ import annotations

import logging
import logging.config

import httpx
from fastapi import FastAPI

from atoll.operator import client as operator_client
from atoll.operator.client import OperatorClient
from atoll.sdk import ProviderClient
from atoll.sdk import client as sdk_client
from atoll.server import KEEP_ALIVE_S, QUIET_LOGGERS, _config
from atoll.signing import Key


def test_http_and_s3_clients_stay_at_warning_when_the_server_debugs() -> None:
    config = _config(FastAPI(), "127.0.0.1", 0, "debug")
    assert isinstance(config.log_config, dict)
    logging.config.dictConfig(config.log_config)
    try:
        assert logging.getLogger("atoll").getEffectiveLevel() == logging.DEBUG
        for name in QUIET_LOGGERS:
            # a request line with a presigned URL or an Authorization header is a debug record
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
            assert not logging.getLogger(f"{name}.connectionpool").isEnabledFor(logging.INFO)
    finally:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_atolls_clients_let_go_of_an_idle_connection_before_a_server_closes_it() -> None:
    """A request sent on a connection the server is closing at that moment fails unsent: the
    clients' idle connections expire before the server's (``atoll serve``'s, and uvicorn's
    default of 5 s for a server run by other means)."""
    server_keeps = _config(FastAPI(), "127.0.0.1", 0).timeout_keep_alive
    assert server_keeps == KEEP_ALIVE_S
    for idle in (sdk_client.IDLE_CONNECTION_S, operator_client.IDLE_CONNECTION_S):
        assert idle < min(server_keeps, 5)
    with ProviderClient("http://127.0.0.1:9") as client:
        transport = client._http._transport
        assert isinstance(transport, httpx.HTTPTransport)
        assert transport._pool._keepalive_expiry == sdk_client.IDLE_CONNECTION_S
    operator = OperatorClient("http://127.0.0.1:9", Key.generate())
    transport_ = operator._client._transport
    assert isinstance(transport_, httpx.AsyncHTTPTransport)
    assert transport_._pool._keepalive_expiry == operator_client.IDLE_CONNECTION_S
