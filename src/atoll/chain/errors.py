"""Exceptions of the chain layer.

::

    ChainError                  anything the chain layer cannot do
    ├── ChainRevert             a call or transaction reverted (``.reason``)
    ├── ChainUnavailable        the node cannot be reached / the store is in use
    └── ChainTimeout            no receipt within the time allowed
"""

from __future__ import annotations


class ChainError(Exception):
    """Base class of the chain layer's errors."""


class ChainRevert(ChainError):
    """The EVM reverted: same type and reason text on every backend.

    ``reason`` is the revert string (``assert x, "reason"`` in Vyper), or a short
    description when the revert carried none.
    """

    def __init__(self, reason: str, *, tx_hash: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tx_hash = tx_hash


class ChainUnavailable(ChainError):
    """The node is unreachable, or the embedded chain's store is held elsewhere."""


class ChainTimeout(ChainError):
    """A transaction's receipt did not arrive in time."""
