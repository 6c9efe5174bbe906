"""The provider's FastAPI application. Errors are answered as ``{"error": message}`` with a
4xx status; a bug is a 500 with no detail (the detail goes to the server log only)."""

from __future__ import annotations

import logging

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoll.errors import AtollError
from atoll.provider.limits import BodyLimitMiddleware, RequestLimits, cap_recursion, send_error
from atoll.provider.metrics import Metrics
from atoll.provider.openapi import document_errors
from atoll.provider.ratelimit import (
    UNSIGNED_ROUTES,
    RateLimitMiddleware,
    RateLimits,
    TooManyRequests,
)
from atoll.provider.routes import assets, chain, compute, review
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
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        )
        return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation(exc)}, status_code=400)

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


#: error codes the rules in atoll.provider.openapi cannot see in a route's signature
EXTRA_CODES: dict[tuple[str, str], set[int]] = {
    ("GET", "/api/services/chain"): {404},
    ("POST", "/api/services/faucet"): {404},
    ("POST", "/api/services/initializeCompute"): {403, 404},
    # JSON-RPC reads its body itself, so the schema shows none; the limits still apply
    ("POST", "/chain"): {400, 413},
}


def serve_docs(app: FastAPI) -> None:
    """Swagger UI from the files a Python package ships, so /docs works offline."""
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


def create_provider_app(
    context: ProviderContext,
    limits: RequestLimits | None = None,
    rate_limits: RateLimits | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    # py_ecc (imported through web3) raised the limit to 100,000: bring it back
    cap_recursion()
    app = FastAPI(
        title="Atoll Provider",
        summary="Compute-to-Data: run algorithms next to the data, return only results",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    app.state.provider = context
    # middleware added last runs first: metrics see every answer, the catch-all every bug,
    # and a flood is refused before its body is read
    app.add_middleware(BodyLimitMiddleware, limits=limits or RequestLimits())
    if rate_limits is not None:
        app.state.rate_limits = rate_limits
        app.add_middleware(RateLimitMiddleware, limits=rate_limits)
    install_error_handlers(app)
    app.include_router(assets.router)
    app.include_router(compute.router)
    app.include_router(chain.router)
    app.include_router(review.router)
    serve_docs(app)
    document_errors(app, set(UNSIGNED_ROUTES) if rate_limits else set(), EXTRA_CODES)

    @app.get("/", tags=["meta"], summary="Provider identity and versions")
    def root() -> dict[str, object]:
        return {"software": "atoll-provider", "version": "0.1.0"}

    @app.get("/healthz", tags=["meta"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    (metrics or Metrics()).install(app)

    return app
