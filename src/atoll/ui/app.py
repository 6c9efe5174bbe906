"""The dashboard's application, mounted at ``/ui`` on the provider's."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from atoll.errors import AtollError
from atoll.provider.routes.common import ProviderContext
from atoll.ui import consumer, publisher, review, signin
from atoll.ui.sessions import SessionStore
from atoll.ui.web import HERE, SecurityHeaders, SignInNeeded, render
from atoll.web.errors import describe_validation

log = logging.getLogger("atoll.ui")

PREFIX = "/ui"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return (
        "/siwe/" in path
        or "/cli/" in path
        or "x-csrf-token" in request.headers
        or "application/json" in request.headers.get("accept", "")
    )


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    if status == 401:
        return render(request, "login.html", status_code=401, title="Sign in", error=message)
    return render(request, "error.html", status_code=status, title="Refused", message=message)


def create_ui_app(context: ProviderContext, sessions: SessionStore) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.provider = context
    app.state.sessions = sessions
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (signin, consumer, publisher, review):
        app.include_router(module.router)

    @app.exception_handler(AtollError)
    async def refused(request: Request, exc: AtollError) -> Response:
        if isinstance(exc, SignInNeeded):
            return _error(request, 401, "Sign in to see this page.")
        return _error(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 400, describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail))

    return app


def mount_ui(app: FastAPI, context: ProviderContext, sessions: SessionStore) -> None:
    app.mount(PREFIX, create_ui_app(context, sessions))
