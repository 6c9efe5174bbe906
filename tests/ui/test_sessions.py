"""Dashboard sessions and single-use sign-in values, on both store backends."""

from __future__ import annotations

import sqlalchemy as sa

from atoll.db.schema import ui_sessions
from atoll.ui.sessions import SessionStore

ADDRESS = "0x" + "ab" * 20


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_expires_and_is_revoked(db: sa.Engine) -> None:
    clock = Clock()
    store = SessionStore(db, session_seconds=60, clock=clock)
    token, session = store.open(ADDRESS, "siwe")
    assert store.get(token) == session
    assert store.get(token + "x") is None and store.get("") is None
    clock.now += 61
    assert store.get(token) is None
    token, _ = store.open(ADDRESS, "cli")
    store.revoke(token)
    assert store.get(token) is None
    first, _ = store.open(ADDRESS, "cli")
    second, _ = store.open(ADDRESS, "siwe")
    assert store.revoke_all(ADDRESS) == 2
    assert store.get(first) is None and store.get(second) is None


def test_only_a_hash_of_the_token_is_stored(db: sa.Engine) -> None:
    store = SessionStore(db)
    token, _ = store.open(ADDRESS, "siwe")
    with db.connect() as conn:
        stored = conn.execute(sa.select(ui_sessions.c.token_hash)).scalars().all()
    assert token not in stored and len(stored) == 1


def test_a_sign_in_value_is_taken_once_before_it_expires(db: sa.Engine) -> None:
    clock = Clock()
    store = SessionStore(db, clock=clock)
    code = store.issue("cli-code", 60, address=ADDRESS)
    assert store.take("siwe", code) is None  # another kind
    assert store.take("cli-code", code) == ADDRESS
    assert store.take("cli-code", code) is None
    late = store.issue("cli-code", 60, address=ADDRESS)
    clock.now += 61
    assert store.take("cli-code", late) is None


def test_a_csrf_token_must_match(db: sa.Engine) -> None:
    _token, session = SessionStore(db).open(ADDRESS, "siwe")
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None) and not session.csrf_ok("") and not session.csrf_ok("x")
