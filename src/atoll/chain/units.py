"""Amounts on chain: ether and the token both count in 18 decimals."""

from __future__ import annotations

#: one ether, or one token, in the smallest unit
ETHER = 10**18
TOKEN = ETHER


def whole(amount: int) -> float:
    """An amount in the smallest unit as whole ether or tokens, for display only."""
    return amount / TOKEN
