"""Rate limits on the routes anyone may call without signing (faucet, quote, nonce, search):
per client IP before the request is read, and per address once the route knows it.

Signed routes need no such limit here: each call costs its sender a fresh signature and
nonce, and a forged one is refused before any work.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from atoll.errors import ConfigError
from atoll.web.errors import TooManyRequests
from atoll.web.limits import send_error

#: (method, path) of each unsigned route → the name its limits are counted under
UNSIGNED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/services/faucet"): "faucet",
    ("POST", "/api/services/initializeCompute"): "initializeCompute",
    ("GET", "/api/services/nonce"): "nonce",
    ("GET", "/api/services/assets"): "assets",
    # the dashboard's sign-in: each answer stores a single-use value
    ("POST", "/ui/siwe/message"): "ui-signin",
    ("POST", "/ui/cli/challenge"): "ui-signin",
}


class RateLimits:
    """``per_ip`` and ``per_address`` in the limits library's notation ("30/minute",
    "10/minute;100/hour"); empty means no limit of that kind."""

    def __init__(self, per_ip: str, per_address: str) -> None:
        self.per_ip = _parse(per_ip)
        self.per_address = _parse(per_address)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check_ip(self, route: str, ip: str) -> None:
        self._hit(self.per_ip, route, "ip", ip, "from this address (IP)")

    def check_address(self, route: str, address: str) -> None:
        self._hit(self.per_address, route, "address", address.lower(), f"for {address}")

    def _hit(self, items: list[RateLimitItem], route: str, kind: str, key: str, who: str) -> None:
        for item in items:
            if not self._limiter.hit(item, route, kind, key):
                reset = self._limiter.get_window_stats(item, route, kind, key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise TooManyRequests(
                    f"too many {route} requests {who}: at most {item.amount} per "
                    f"{_window(item)}; retry in {wait} s",
                    wait,
                )


def _parse(text: str) -> list[RateLimitItem]:
    try:
        return parse_many(text) if text.strip() else []
    except ValueError:
        raise ConfigError(f"rate limit {text!r}: write it as N/minute, N/hour…") from None


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def check_address(request: Request, route: str, address: str) -> None:
    """The per-address limit of ``route``, where the app has rate limits."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is not None:
        limits.check_address(route, address)


class RateLimitMiddleware:
    """The per-IP limit, checked before the body is read so that a flood costs little."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = UNSIGNED_ROUTES.get((scope.get("method", ""), scope.get("path", "")))
        if scope["type"] == "http" and route is not None:
            client = scope.get("client")
            try:
                self.limits.check_ip(route, client[0] if client else "unknown")
            except TooManyRequests as exc:
                await send_error(send, 429, exc.message, {"retry-after": str(exc.retry_after)})
                return
        await self.app(scope, receive, send)
