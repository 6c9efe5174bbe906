"""Checks every signed request: a valid signature by the claimed address, then a fresh nonce.

The nonce is consumed only after the signature is verified, so nobody can burn another
address's nonces with forged requests. Async routes call :meth:`RequestAuth.acheck`, which
does both in a worker thread: recovering a signature costs about a millisecond of CPU and the
nonce is a store write, neither of which may stall the event loop that serves everyone else.
"""

from __future__ import annotations

import anyio.to_thread

from atoll import signing
from atoll.errors import BadRequest
from atoll.web.nonces import NonceStore


class RequestAuth:
    def __init__(self, nonces: NonceStore) -> None:
        self.nonces = nonces

    def check(self, route: str, address: str, nonce: object, signature: str, *parts: object) -> str:
        """Verify a request signed over ``route + address + parts… + nonce``; return the
        checksummed address."""
        value = _nonce(nonce)
        address = signing.normalise_address(address)
        text = signing.message(route, address, *parts, value)
        signer = signing.verify(text, signature, address)
        self.nonces.consume(signer, value)
        return signer

    async def acheck(
        self, route: str, address: str, nonce: object, signature: str, *parts: object
    ) -> str:
        """:meth:`check`, off the event loop."""
        return await anyio.to_thread.run_sync(
            lambda: self.check(route, address, nonce, signature, *parts)
        )


def _nonce(raw: object) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise BadRequest("the nonce must be an integer") from None
    return value
