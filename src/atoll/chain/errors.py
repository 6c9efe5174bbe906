"""Exceptions of the chain layer.

::

    ChainError                  anything the chain layer cannot do
    ├── ChainRevert             a call or transaction reverted (``.reason``)
    ├── ChainUnavailable        the node cannot be reached / the store is in use
    └── ChainTimeout            no receipt within the time allowed
"""

from __future__ import annotations

from atoll.errors import AtollError


class ChainError(AtollError):
    """Base class of the chain layer's errors; an :class:`AtollError`, so the CLI and the
    API report it as one clear line."""

    status_code = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ChainRevert(ChainError):
    """The EVM reverted: same type and reason text on every backend.

    ``reason`` is the revert string (``assert x, "reason"`` in Vyper), or a short
    description when the revert carried none.
    """

    status_code = 409

    def __init__(self, reason: str, *, tx_hash: bytes | None = None) -> None:
        super().__init__(reason)
        self.message = f"the chain refused: {reason}"
        self.reason = reason
        self.tx_hash = tx_hash


class ChainUnavailable(ChainError):
    """The node is unreachable, or the embedded chain's store is held elsewhere."""


class ChainTimeout(ChainError):
    """A transaction's receipt did not arrive in time."""
