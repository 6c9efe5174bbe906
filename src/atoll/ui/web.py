"""What every dashboard page shares: templates, the security headers, the session and its
CSRF token, and forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoll.errors import AuthError, BadRequest, Forbidden
from atoll.provider.routes.common import ProviderContext
from atoll.ui.sessions import Session, SessionStore

HERE = Path(__file__).parent
COOKIE = "atoll_session"
#: forms are small: a policy, a reason, an algorithm's code
FORM_BYTES = 256 * 1024

#: scripts and styles from this origin only (no inline script, no other origin), nothing
#: framed and no framing; images may be data: (none are) or from here
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: what a preview of a job's file is served with: a document of its own with no script, no
#: plugin and no origin of ours (an SVG opened directly runs nothing)
SANDBOXED = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "svg"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SecurityHeaders:
    """Every answer under /ui carries the headers; one that set its own CSP keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add)


def provider(request: Request) -> ProviderContext:
    found: ProviderContext = request.app.state.provider
    return found


def sessions(request: Request) -> SessionStore:
    found: SessionStore = request.app.state.sessions
    return found


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def session_of(request: Request) -> Session | None:
    return sessions(request).get(request.cookies.get(COOKIE))


def signed_in(request: Request) -> Session:
    """The request's live session; refused without one."""
    found = session_of(request)
    if found is None:
        raise SignInNeeded("sign in first")
    return found


class SignInNeeded(AuthError):
    """Answered with the sign-in page, status 401."""


async def form(request: Request) -> dict[str, str]:
    """An url-encoded form (the dashboard's forms send nothing else); a repeated field keeps
    its last value."""
    body = await request.body()
    if len(body) > FORM_BYTES:
        raise BadRequest("the form is too large")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form is malformed") from None


async def acting(request: Request) -> tuple[Session, dict[str, str]]:
    """A state-changing request: its session and form, once the CSRF token matches (sent as
    the form's ``csrf`` field or the ``X-CSRF-Token`` header)."""
    session = signed_in(request)
    fields = await form(request)
    sent = request.headers.get("x-csrf-token") or fields.get("csrf")
    if not session.csrf_ok(sent):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
    return session, fields


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    session = values.pop("session", None) or session_of(request)
    html = templates.get_template(name).render(
        base=str(request.scope.get("root_path", "")),
        session=session,
        csrf=session.csrf if session is not None else "",
        **values,
    )
    return HTMLResponse(html, status_code=status_code)
