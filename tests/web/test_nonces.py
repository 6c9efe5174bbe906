"""Nonces on every store backend: any unused nonce near the provider's clock, once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from atoll import signing
from atoll.db.schema import used_nonces
from atoll.errors import AuthError, BadRequest
from atoll.web import nonces as nonces_module
from atoll.web.nonces import WINDOW_US, NonceStore

A = "0x" + "11" * 20
NOW = 1_800_000_000_000_000


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def refused(store: NonceStore, nonce: int, scope: str = "consumer") -> str:
    with pytest.raises(AuthError) as info:
        store.consume(A, nonce, scope)
    assert signing.is_stale_nonce(info.value.message)
    return info.value.message


def test_any_order_within_the_window_each_nonce_once(db: sa.Engine) -> None:
    store = NonceStore(db, Clock())
    # out of order, as several clients on one key send them
    for nonce in (NOW + 5, NOW - 100, NOW + 1, NOW - WINDOW_US, NOW + WINDOW_US):
        store.consume(A, nonce)
    for used in (NOW + 5, NOW - 100, NOW + 1):
        assert "already used" in refused(store, used)
    assert store.current(A) == NOW + WINDOW_US


def test_nonces_far_from_the_clock_are_refused_and_lock_nobody_out(db: sa.Engine) -> None:
    store = NonceStore(db, Clock())
    hour = 3600 * 1_000_000
    message = refused(store, NOW + hour)
    assert "clock" in message and str(NOW) in message
    refused(store, NOW - hour)
    refused(store, NOW + WINDOW_US + 1)
    # the address still signs with the right time
    store.consume(A, NOW + 1)
    store.consume(A, NOW - 1)


def test_scopes_and_addresses_are_independent(db: sa.Engine) -> None:
    store = NonceStore(db, Clock())
    store.consume(A, NOW)
    store.consume(A, NOW, scope="operator")
    store.consume("0x" + "22" * 20, NOW)
    refused(store, NOW, scope="operator")


def test_racing_requests_with_one_nonce_have_one_winner(db: sa.Engine) -> None:
    store = NonceStore(db, Clock())

    def attempt(_: int) -> bool:
        try:
            store.consume(A, NOW + 42)
            return True
        except AuthError:
            return False

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(attempt, range(16)))
    assert wins.count(True) == 1


def test_used_nonces_are_forgotten_once_the_window_refuses_them(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nonces_module, "PRUNE_EVERY_S", 0.0)
    clock = Clock()
    store = NonceStore(db, clock)
    for i in range(5):
        store.consume(A, NOW + i)
    clock.now = NOW + WINDOW_US + 3  # NOW+0 … NOW+2 are out of the window now
    store.consume(A, clock.now)
    with db.connect() as conn:
        kept = sorted(conn.execute(sa.select(used_nonces.c.nonce)).scalars())
    assert kept == [NOW + 3, NOW + 4, clock.now]
    # forgotten, yet still refused: the window does it
    assert "clock" in refused(store, NOW)


def test_nonce_must_be_positive(db: sa.Engine) -> None:
    with pytest.raises(BadRequest):
        NonceStore(db, Clock()).consume(A, 0)


def test_a_nonce_commit_on_postgresql_does_not_wait_for_the_disk(pg_db: sa.Engine) -> None:
    settings: list[str] = []

    # the insert is its own transaction: the setting it commits under is asked for by the
    # insert itself
    def before(
        conn: sa.Connection, cursor: object, statement: str, params: object, *_: object
    ) -> tuple[str, object]:
        if statement.startswith("INSERT INTO used_nonces"):
            statement += " RETURNING current_setting('synchronous_commit')"
        return statement, params

    def after(conn: sa.Connection, cursor: Any, statement: str, *_: object) -> None:
        if statement.startswith("INSERT INTO used_nonces"):
            settings.append(cursor.fetchone()[0])

    sa.event.listen(pg_db, "before_cursor_execute", before, retval=True)
    sa.event.listen(pg_db, "after_cursor_execute", after)
    try:
        NonceStore(pg_db, Clock()).consume(A, NOW)
    finally:
        sa.event.remove(pg_db, "before_cursor_execute", before)
        sa.event.remove(pg_db, "after_cursor_execute", after)
    assert settings == ["off"]
    # for that transaction only: the store's other commits still wait
    with pg_db.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
