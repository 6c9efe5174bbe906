"""Signing in and out: Sign-In with Ethereum from a browser wallet, and ``atoll ui login``'s
one-time code for users whose key is in the CLI.

``atoll ui login`` asks for a challenge, signs it with the CLI's key and gets a one-time code
for a URL; the page at that URL asks the user to continue, and only that page's own form
(a same-origin POST) spends the code and sets the session cookie, so a link or a form on
another site cannot sign a visitor's browser into someone else's session; the page it lands
on carries no code. ``atoll ui logout`` revokes every session of its address
with a request signed like the API's.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from atoll import signing
from atoll.errors import AuthError, Forbidden, NotFound
from atoll.ui import siwe
from atoll.ui.sessions import CHALLENGE_SECONDS, CODE_SECONDS, SessionStore
from atoll.ui.web import COOKIE, acting, form, provider, render, secure, session_of, sessions

router = APIRouter()

SIWE_NONCE = "siwe"
CLI_CHALLENGE = "cli-challenge"
CLI_CODE = "cli-code"


def challenge_text(origin: str, address: str, challenge: str) -> str:
    """What ``atoll ui login`` signs: a challenge of this provider's, for this address."""
    return signing.message("ui-login", origin, address, challenge)


def origin_of(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def chain_id(request: Request) -> int:
    c = provider(request)
    if c.chain is None:
        raise NotFound("this provider has no chain to sign in on")
    return c.chain.chain.chain_id


def _signed_in(request: Request, address: str, method: str, to: str) -> Response:
    token, _session = sessions(request).open(address, method)
    response: Response
    if to:
        response = RedirectResponse(to, status_code=303)
    else:
        response = JSONResponse({"address": address, "next": "/ui/"})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(sessions(request).session_seconds),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", title="Sign in")


# -- Sign-In with Ethereum -------------------------------------------------------------------


class SiweStart(BaseModel):
    address: str = Field(min_length=42, max_length=42)


class SiweFinish(BaseModel):
    message: str = Field(min_length=1, max_length=2000)
    signature: str = Field(min_length=1, max_length=200)


@router.post("/siwe/message")
def siwe_message(request: Request, body: SiweStart) -> dict[str, str]:
    """The message the wallet is to sign, with a new single-use nonce."""
    address = signing.normalise_address(body.address)
    nonce = sessions(request).issue(SIWE_NONCE, siwe.MESSAGE_SECONDS)
    text = siwe.build(
        request.url.netloc,
        address,
        origin_of(request) + "/ui",
        chain_id(request),
        nonce,
        time.time(),
    )
    return {"message": text}


@router.post("/siwe/verify")
def siwe_verify(request: Request, body: SiweFinish) -> Response:
    message = siwe.verify(
        body.message,
        body.signature,
        domain=request.url.netloc,
        uri=origin_of(request) + "/ui",
        chain_id=chain_id(request),
        now=time.time(),
    )
    # the nonce is spent only by a message that checked out: nobody burns another's nonce
    if sessions(request).take(SIWE_NONCE, message.nonce) is None:
        raise AuthError("the sign-in nonce is unknown, used or expired; sign in again")
    return _signed_in(request, message.address, "siwe", "")


# -- atoll ui login ----------------------------------------------------------------------------


class CliStart(BaseModel):
    address: str = Field(min_length=42, max_length=42)


class CliFinish(BaseModel):
    address: str = Field(min_length=42, max_length=42)
    challenge: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=200)


@router.post("/cli/challenge")
def cli_challenge(request: Request, body: CliStart) -> dict[str, str]:
    address = signing.normalise_address(body.address)
    value = sessions(request).issue(CLI_CHALLENGE, CHALLENGE_SECONDS)
    return {"challenge": value, "text": challenge_text(origin_of(request), address, value)}


@router.post("/cli/code")
def cli_code(request: Request, body: CliFinish) -> dict[str, Any]:
    """A one-time code for the signed challenge: the URL that opens a session."""
    address = signing.normalise_address(body.address)
    text = challenge_text(origin_of(request), address, body.challenge)
    signer = signing.verify(text, body.signature, address)
    if sessions(request).take(CLI_CHALLENGE, body.challenge) is None:
        raise AuthError("the challenge is unknown, used or expired; run atoll ui login again")
    code = sessions(request).issue(CLI_CODE, CODE_SECONDS, address=signer)
    return {"url": f"{origin_of(request)}/ui/login/code?code={code}", "expires": CODE_SECONDS}


def _same_origin(request: Request) -> bool:
    """Whether a browser says the request comes from this dashboard's own page. Browsers send
    Sec-Fetch-Site and Origin on a POST; a client that sends neither is not a browser another
    site can drive."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        # the dashboard sends no referrer, so its own form's Origin is "null": the fetch
        # metadata, which the page cannot change, decides
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin == origin_of(request)


@router.get("/login/code", response_class=HTMLResponse)
def cli_confirm(request: Request, code: str = "") -> HTMLResponse:
    """The page ``atoll ui login`` opens: it spends nothing until its form is sent."""
    if not code or len(code) > 128:
        return _code_refused(request)
    return render(request, "login_code.html", title="Sign in", code=code)


@router.post("/login/code")
async def cli_exchange(request: Request) -> Response:
    if not _same_origin(request):
        raise Forbidden("a sign-in link is used from the dashboard's own page only")
    fields = await form(request)
    address = sessions(request).take(CLI_CODE, fields.get("code", ""))
    if not address:
        return _code_refused(request)
    return _signed_in(request, address, "cli", "/ui/")


def _code_refused(request: Request) -> HTMLResponse:
    return render(
        request,
        "login.html",
        status_code=401,
        title="Sign in",
        error="This sign-in link is unknown, used or expired: run atoll ui login again.",
    )


class CliLogout(BaseModel):
    consumerAddress: str = Field(min_length=1, max_length=42)
    nonce: int
    signature: str = Field(min_length=1, max_length=200)


@router.post("/cli/logout")
async def cli_logout(request: Request, body: CliLogout) -> dict[str, int]:
    """Revoke every session of the signer (``atoll ui logout``)."""
    address = await provider(request).auth.acheck(
        "ui-logout", body.consumerAddress, body.nonce, body.signature
    )
    store: SessionStore = sessions(request)
    return {"revoked": await anyio.to_thread.run_sync(store.revoke_all, address)}


@router.post("/logout")
async def logout(request: Request) -> Response:
    await acting(request)
    token = request.cookies.get(COOKIE, "")
    sessions(request).revoke(token)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(
        COOKIE, path="/ui", httponly=True, samesite="strict", secure=secure(request)
    )
    return response


@router.get("/whoami")
def whoami(request: Request) -> dict[str, str]:
    session = session_of(request)
    return {"address": session.address if session else ""}
