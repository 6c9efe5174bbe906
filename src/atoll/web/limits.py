"""Limits every request meets before a route reads it: a body size per route, enforced while
the body streams in, and a JSON depth and value count checked without parsing.

The JSON check exists because the parsers behind a route (``json``, pydantic) recurse on the
C stack: a body of deeply nested brackets would crash the whole process, not just fail the
request. So the nesting is measured here by a loop over the brackets, and only a body that
passes reaches a parser. :func:`cap_recursion` keeps Python's recursion limit at a value the
stack can hold, whatever a dependency set it to on import.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: bodies up to this size are checked on the event loop; larger ones on a worker thread
SCAN_INLINE = 64 << 10

#: what the embedded EVM needs for its 1024 nested calls (py-evm asks for exactly this)
EVM_RECURSION_LIMIT = 1024 * 12

#: a JSON string: an unterminated one (or one ending in a lone backslash) runs to the end,
#: so that every match attempt succeeds and the scan stays linear
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


def cap_recursion(limit: int = EVM_RECURSION_LIMIT) -> None:
    """Bring the recursion limit back to ``limit``. py_ecc (imported through py-evm) raises it
    to 100,000, far more than the C stack holds: they are imported here first so that their
    import-time change has happened and is undone, not redone later."""
    import eth  # noqa: F401
    import py_ecc  # noqa: F401

    sys.setrecursionlimit(limit)


def json_problem(body: bytes, max_depth: int, max_values: int) -> str | None:
    """Why ``body`` may not be handed to a JSON parser, or None. Linear in the body's size and
    free of recursion."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the request body is not UTF-8 text"
    if b"\0" in body:
        # a NUL makes json.loads guess UTF-16/32, and then the brackets seen here would not be
        # the ones it parses; valid JSON never holds one
        return "the request body holds a NUL byte"
    skeleton = _STRING.sub(b"", body)
    if b"NaN" in skeleton or b"Infinity" in skeleton:
        # Python's parser takes them, JSON has no such values, and the answer could then not
        # be encoded
        return "the JSON body holds NaN or Infinity, which JSON does not have"
    values = skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{")
    if values > max_values:
        return f"the JSON body holds more than {max_values} values"
    depth = 0
    for byte in skeleton.translate(None, _NOT_BRACKETS):
        if byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return f"the JSON body is nested deeper than {max_depth} levels"
        else:
            depth -= 1
    return None


@dataclass(frozen=True)
class RequestLimits:
    #: the largest body a route accepts, unless ``route_bytes`` names the route
    body_bytes: int = 1 << 20
    #: path → the largest body it accepts
    route_bytes: Mapping[str, int] = field(default_factory=dict)
    json_depth: int = 64
    json_values: int = 100_000

    def body_limit(self, path: str) -> int:
        return self.route_bytes.get(path, self.body_bytes)


async def send_error(
    send: Send, status: int, message: str, headers: Mapping[str, str] | None = None
) -> None:
    """Answer ``{"error": message}`` straight from a middleware."""
    body = json.dumps({"error": message}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Reads the body (up to the route's limit) before the app does, refuses it with 413 the
    moment it is too large (from Content-Length, or as it streams in when that is absent or
    wrong), and with 400 when its JSON is too deep or too big; then replays it to the app."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.body_limit(scope["path"])
        too_large = f"the request body is over {limit} bytes, the limit of this route"
        # the rest of an oversized body is never read: close instead of draining it
        close = {"connection": "close"}
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, too_large, close)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending it all
            chunk = message.get("body", b"")
            if len(body) + len(chunk) > limit:
                await send_error(send, 413, too_large, close)
                return
            body += chunk
            more = message.get("more_body", False)
        data = bytes(body)
        if data:
            check = functools.partial(
                json_problem, data, self.limits.json_depth, self.limits.json_values
            )
            # a large body takes a while to scan: not on the event loop, which serves everyone
            problem = check() if len(data) < SCAN_INLINE else await anyio.to_thread.run_sync(check)
            if problem is not None:
                await send_error(send, 400, problem)
                return
        await self.app(scope, _replay(data, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # afterwards, what the server says next (a disconnect), for streaming responses
        return await receive()

    return replay
