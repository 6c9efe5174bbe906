"""A window of unused nonces per (scope, address): a signed request is accepted once.

A nonce is the signer's clock in microseconds since the epoch. A service (the provider, the
operator) accepts any nonce within :data:`WINDOW_US` of its own clock that the address has not
used yet, and remembers used nonces until they fall out of the window (after which the window
alone refuses them). Unlike a strictly increasing counter, this lets several clients share one
key at once (their requests may arrive in any order) and a client whose clock is wrong cannot
lock the address out: its nonces are refused, nobody else's are, and the refusal says the
service's time so the client can correct its clock and sign again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, Insert, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from atoll.db import reader
from atoll.db.schema import used_nonces
from atoll.errors import AuthError, BadRequest
from atoll.signing import STALE_NONCE as STALE

MAX_NONCE = 2**62
#: how far a nonce may be from the service's clock, either way
WINDOW_US = 300 * 1_000_000
#: at most this often, used nonces that fell out of the window are deleted
PRUNE_EVERY_S = 30.0


def now_us() -> int:
    return time.time_ns() // 1000


class NonceStore:
    def __init__(self, engine: Engine, clock: Callable[[], int] = now_us) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._clock = clock
        self._pruned = 0.0
        self._prune_lock = threading.Lock()

    def now(self) -> int:
        """The service's clock, in the nonces' unit (microseconds)."""
        return self._clock()

    def current(self, address: str, scope: str = "consumer") -> int:
        """The highest nonce this address used within the window (0 if none)."""
        with self._reader.connect() as conn:
            value = conn.execute(
                select(func.max(used_nonces.c.nonce)).where(
                    used_nonces.c.scope == scope, used_nonces.c.address == address.lower()
                )
            ).scalar()
        return int(value or 0)

    def consume(self, address: str, nonce: int, scope: str = "consumer") -> None:
        """Accept ``nonce`` if it is within the window and this address has not used it."""
        if not 0 < nonce < MAX_NONCE:
            raise BadRequest("the nonce must be a positive integer")
        now = self._clock()
        if abs(nonce - now) > WINDOW_US:
            raise AuthError(
                f"{STALE}it is not within {WINDOW_US // 1_000_000} s of the provider's clock "
                f"({now} µs since the epoch); sign with the current time"
            )
        self._prune(now)
        row = {"scope": scope, "address": address.lower(), "nonce": nonce}
        try:
            if self._engine.dialect.name == "postgresql":
                with self._reader.connect() as conn:
                    conn.execute(_unflushed_insert(row))
            else:
                with self._engine.begin() as conn:
                    conn.execute(insert(used_nonces).values(**row))
        except IntegrityError:
            raise AuthError(f"{STALE}it was already used; sign with a new nonce") from None

    def _prune(self, now: int) -> None:
        mono = time.monotonic()
        if mono - self._pruned < PRUNE_EVERY_S or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._pruned = mono
            with self._engine.begin() as conn:
                conn.execute(delete(used_nonces).where(used_nonces.c.nonce < now - WINDOW_US))
        finally:
            self._prune_lock.release()


def _unflushed_insert(row: dict[str, object]) -> Insert:
    """The nonce's insert (PostgreSQL), as one statement that is its own transaction and
    does not wait for the commit's flush to disk: one round trip instead of four (begin,
    setting, insert, commit) on every signed request. Only a crash of the database server
    itself can lose the row, and then only along with every later write: PostgreSQL flushes
    its log in order, so a request whose effect was committed has its nonce on disk too, and
    one whose nonce was lost left no effect to repeat. The primary key makes the insert the
    check: of two requests racing with one nonce, exactly one succeeds."""
    # set_config(..., is_local) lasts until the statement's own transaction commits, and the
    # commit reads it: the connection's later transactions wait for the disk as before
    unflushed = select(func.set_config("synchronous_commit", "off", True)).subquery()
    values = select(*(literal(v) for v in row.values())).select_from(unflushed)
    return insert(used_nonces).from_select(list(row), values)
