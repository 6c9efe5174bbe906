"""How the server configures logging: third-party clients never log at debug."""

from __future__ import annotations

import logging
import logging.config

from fastapi import FastAPI

from atoll.server import QUIET_LOGGERS, _config


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
