"""The provider's FastAPI application: its routes, middleware, documentation and metrics.
Errors are answered as both services answer them (:mod:`atoll.web.errors`)."""

from __future__ import annotations

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from atoll.provider.metrics import Metrics
from atoll.provider.openapi import document_errors
from atoll.provider.ratelimit import UNSIGNED_ROUTES, RateLimitMiddleware, RateLimits
from atoll.provider.routes import access, assets, chain, compute, dryrun, mock, review
from atoll.provider.routes.common import ProviderContext
from atoll.web.errors import install_error_handlers
from atoll.web.limits import BodyLimitMiddleware, RequestLimits, cap_recursion

#: error codes the rules in atoll.provider.openapi cannot see in a route's signature
EXTRA_CODES: dict[tuple[str, str], set[int]] = {
    ("GET", "/api/services/chain"): {404},
    ("POST", "/api/services/faucet"): {404},
    ("POST", "/api/services/initializeCompute"): {403, 404, 503},
    # free compute: a rate limit per address and a cap on dry runs at once
    ("POST", "/api/services/dryrun"): {429, 503},
    # the data access service: no paid agreement, a range past the end, a changed file
    ("GET", "/api/services/access"): {402, 416},
    ("GET", "/api/services/accessFiles"): {402},
    # JSON-RPC reads its body itself, so the schema shows none; the limits still apply
    ("POST", "/chain"): {400, 413},
    # results past their storage time, and a node whose storage is full
    ("GET", "/api/services/computeResult"): {410},
    ("GET", "/api/services/computeLogs"): {410},
    ("GET", "/api/services/review/file"): {410},
    ("GET", "/api/services/review/item"): {410},
    ("GET", "/api/services/dryrunResult"): {410},
    ("POST", "/api/services/compute"): {503},
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
    # py_ecc (imported through py-evm) raised the limit to 100,000: bring it back
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
    app.include_router(mock.router)
    app.include_router(dryrun.router)
    app.include_router(review.router)
    app.include_router(access.router)
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
