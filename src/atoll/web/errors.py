"""How both services answer an error: ``{"error": message}`` with a 4xx status; a bug is a
500 with no detail (the detail goes to the server log only)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoll.errors import AtollError, RateLimited
from atoll.web.limits import send_error

log = logging.getLogger("atoll.web")


class TooManyRequests(RateLimited):
    """A caller over its rate: 429, with the seconds to wait in ``Retry-After``."""


def describe_validation(exc: RequestValidationError) -> str:
    """The first few problems pydantic found, where each is, in one line."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as ``{"error": message}``: a refusal with its own code,
    a malformed request with 400, a bug with a bare 500."""

    @app.exception_handler(AtollError)
    async def atoll_error(_: Request, exc: AtollError) -> JSONResponse:
        headers = (
            {"Retry-After": str(exc.retry_after)}
            if isinstance(exc, RateLimited)
            else getattr(exc, "headers", None)
        )
        return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation(exc)}, status_code=400)

    @app.exception_handler(OperationalError)
    async def store_unreachable(_: Request, exc: OperationalError) -> JSONResponse:
        # a store connection lost mid-query (a database restart, a failover) or a lock held
        # too long: the request may be sent again as it was. Its SQL and parameters stay out
        # of the log and the answer: they may name a dataset or carry the database's address
        log.warning("the store failed a request: %s", type(exc.orig).__name__)
        return JSONResponse(
            {"error": "the node's store is unreachable for a moment; try again"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    # not an exception handler for Exception: Starlette re-raises after those, so the error
    # was logged twice and the client's connection closed
    app.add_middleware(CatchAll)


class CatchAll:
    """A bug answers one generic 500, logged once, on a connection that stays usable. Once a
    response has begun it cannot be changed: then the error goes on to the server, which
    logs it and cuts the stream so the client sees it is incomplete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or scope["type"] != "http":
                raise
            log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
            await send_error(send, 500, "internal error")
