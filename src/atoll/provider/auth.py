"""Checks every signed request: a valid signature by the claimed address, then a fresh nonce.

The nonce is consumed only after the signature is verified, so nobody can burn another
address's nonces with forged requests.
"""

from __future__ import annotations

from atoll import signing
from atoll.errors import BadRequest
from atoll.provider.nonces import NonceStore


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


def _nonce(raw: object) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise BadRequest("the nonce must be an integer") from None
    return value
