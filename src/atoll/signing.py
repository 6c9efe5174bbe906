"""Request signatures: EIP-191 personal_sign over keccak256 of a route-specific message.

The message is ``route`` followed by the request's fields and the nonce, joined with no
separator as Ocean's provider does (e.g. consumer address + DID + nonce). The route prefix
keeps a signature made for one endpoint from being valid at another.

Signatures are made and recovered with libsecp256k1 (coincurve) directly: eth-account does the
same, but importing it costs a client a large share of its start-up.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

from atoll.canonical import canonical_sha256
from atoll.errors import AuthError, BadRequest

ADDRESS_LEN = 42
#: every refusal that signing again with a fresh nonce may cure starts with this, so that a
#: client can tell it from a bad signature
STALE_NONCE = "stale nonce: "
_PERSONAL_PREFIX = b"\x19Ethereum Signed Message:\n32"
_HEX = frozenset("0123456789abcdef")


def checksum_address(address: str) -> str:
    """EIP-55: the address with its hex letters' case set by its keccak hash."""
    body = address.lower().removeprefix("0x")
    if len(body) != 40 or not _HEX.issuperset(body):
        raise ValueError(f"not an address: {address!r}")
    digest = keccak(body.encode()).hex()
    return "0x" + "".join(
        c.upper() if int(d, 16) >= 8 else c for c, d in zip(body, digest[:40], strict=True)
    )


def address_of(public_key: PublicKey) -> str:
    return checksum_address(keccak(public_key.format(compressed=False)[1:])[-20:].hex())


def _personal_hash(text: str) -> bytes:
    # EIP-191 personal_sign over the 32-byte keccak of the text
    return keccak(_PERSONAL_PREFIX + keccak(text.encode()))


def is_stale_nonce(message: str) -> bool:
    return message.startswith(STALE_NONCE)


def message(route: str, *parts: object) -> str:
    return route + "".join(str(p) for p in parts)


def body_digest(body: Any) -> str:
    """sha256 of the canonical JSON of a request body, so a signature binds the body."""
    return canonical_sha256(body)


def sign(private_key: bytes, text: str) -> str:
    raw = PrivateKey(private_key).sign_recoverable(_personal_hash(text), hasher=None)
    # r ‖ s ‖ v, with v as 27 or 28 as Ethereum wallets write it
    return "0x" + (raw[:64] + bytes([raw[64] + 27])).hex()


def recover(text: str, signature: str) -> str:
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65:
            raise ValueError("a signature is 65 bytes")
        v = raw[64] - 27 if raw[64] >= 27 else raw[64]
        if v not in (0, 1):
            raise ValueError("bad recovery id")
        public = PublicKey.from_signature_and_message(
            raw[:64] + bytes([v]), _personal_hash(text), hasher=None
        )
    except Exception:
        raise AuthError("the signature is malformed") from None
    return address_of(public)


def normalise_address(address: str) -> str:
    if not isinstance(address, str) or len(address) != ADDRESS_LEN or not address.startswith("0x"):
        raise BadRequest("an address is 0x followed by 40 hex digits")
    try:
        return checksum_address(address)
    except ValueError:
        raise BadRequest("an address is 0x followed by 40 hex digits") from None


def verify(text: str, signature: str, claimed: str) -> str:
    """Return the checksummed address if ``signature`` over ``text`` is by ``claimed``."""
    if not signature:
        raise AuthError("the request is not signed")
    claimed = normalise_address(claimed)
    if recover(text, signature) != claimed:
        raise AuthError("the signature does not match the address")
    return claimed


class Key:
    """A local private key, with a nonce source that never repeats within a process.

    A nonce is this machine's clock in microseconds (corrected by :attr:`clock_offset_us`
    once a provider said its clock differs), plus a random part below a millisecond so that
    other processes signing with the same key at the same moment pick other nonces.
    """

    def __init__(self, private_key: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(private_key) != 32:
            raise ValueError("a private key is 32 bytes")
        self._key = private_key
        self.address: str = address_of(PrivateKey(private_key).public_key)
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()
        #: the provider's clock minus this one's, in microseconds
        self.clock_offset_us = 0

    @classmethod
    def generate(cls) -> Key:
        return cls(secrets.token_bytes(32))

    @classmethod
    def load(cls, path: Path) -> Key:
        try:
            raw = path.read_text().strip()
            return cls(bytes.fromhex(raw.removeprefix("0x")))
        except FileNotFoundError:
            raise AuthError("no key file; create one with `atoll keys new`") from None
        except ValueError:
            raise AuthError("the key file does not hold a hex private key") from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # created 0600 from the start (O_EXCL: never overwrite a key), never readable by others
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("0x" + self._key.hex() + "\n")

    @property
    def private_key(self) -> bytes:
        return self._key

    def next_nonce(self) -> int:
        with self._lock:
            now = int(self._clock() * 1_000_000) + self.clock_offset_us
            self._last = max(self._last + 1, now + secrets.randbelow(1000))
            return self._last

    def adopt_clock(self, provider_now_us: int) -> None:
        """Sign from now on with the provider's clock, which says ``provider_now_us``."""
        with self._lock:
            self.clock_offset_us = provider_now_us - int(self._clock() * 1_000_000)
            # a clock set back must not leave the nonces stuck where the wrong one put them
            self._last = 0

    def sign(self, text: str) -> str:
        return sign(self._key, text)
