"""The provider's FastAPI application. Errors are answered as ``{"error": message}`` with a
4xx status; a bug is a 500 with no detail (the detail goes to the server log only)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from atoll.errors import AtollError
from atoll.provider.routes import assets, chain, compute
from atoll.provider.routes.common import ProviderContext

log = logging.getLogger("atoll.provider")


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AtollError)
    async def atoll_error(_: Request, exc: AtollError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)


def create_provider_app(context: ProviderContext) -> FastAPI:
    app = FastAPI(
        title="Atoll Provider",
        summary="Compute-to-Data: run algorithms next to the data, return only results",
        version="0.1.0",
    )
    app.state.provider = context
    install_error_handlers(app)
    app.include_router(assets.router)
    app.include_router(compute.router)
    app.include_router(chain.router)

    @app.get("/", tags=["meta"], summary="Provider identity and versions")
    def root() -> dict[str, object]:
        return {"software": "atoll-provider", "version": "0.1.0"}

    @app.get("/healthz", tags=["meta"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
