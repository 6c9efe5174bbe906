"""Nonces on every store backend: strictly increasing per address, one winner per nonce."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from atoll.errors import AuthError, BadRequest
from atoll.provider.nonces import NonceStore

A = "0x" + "11" * 20


def test_increasing_nonces_accepted_and_reuse_refused(db: sa.Engine) -> None:
    store = NonceStore(db)
    store.consume(A, 5)
    store.consume(A, 6)
    assert store.current(A) == 6
    for stale in (6, 5, 1):
        with pytest.raises(AuthError):
            store.consume(A, stale)
    assert store.current(A) == 6


def test_scopes_and_addresses_are_independent(db: sa.Engine) -> None:
    store = NonceStore(db)
    store.consume(A, 10)
    store.consume(A, 3, scope="operator")
    store.consume("0x" + "22" * 20, 1)
    assert store.current(A, "operator") == 3


def test_racing_requests_with_one_nonce_have_one_winner(db: sa.Engine) -> None:
    store = NonceStore(db)

    def attempt(_: int) -> bool:
        try:
            store.consume(A, 42)
            return True
        except AuthError:
            return False

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(attempt, range(16)))
    assert wins.count(True) == 1


def test_nonce_must_be_positive(db: sa.Engine) -> None:
    with pytest.raises(BadRequest):
        NonceStore(db).consume(A, 0)
