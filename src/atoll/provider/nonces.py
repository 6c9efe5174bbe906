"""Strictly increasing nonces per (scope, address): a signed request is accepted once."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from atoll.db.schema import nonces
from atoll.errors import AuthError, BadRequest

MAX_NONCE = 2**62


class NonceStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def current(self, address: str, scope: str = "consumer") -> int:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(nonces.c.nonce).where(
                    nonces.c.scope == scope, nonces.c.address == address.lower()
                )
            ).scalar()
        return int(value or 0)

    def consume(self, address: str, nonce: int, scope: str = "consumer") -> None:
        """Accept ``nonce`` if it is above every nonce this address used before."""
        if not 0 < nonce < MAX_NONCE:
            raise BadRequest("the nonce must be a positive integer")
        addr = address.lower()
        for _ in range(3):
            with self._engine.begin() as conn:
                # compare-and-set: two requests racing with one nonce cannot both win
                done = conn.execute(
                    update(nonces)
                    .where(nonces.c.scope == scope, nonces.c.address == addr)
                    .where(nonces.c.nonce < nonce)
                    .values(nonce=nonce)
                )
                if done.rowcount == 1:
                    return
                exists = conn.execute(
                    select(nonces.c.nonce).where(nonces.c.scope == scope, nonces.c.address == addr)
                ).first()
                if exists is not None:
                    raise AuthError("the nonce was already used; sign with a higher nonce")
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(nonces).values(scope=scope, address=addr, nonce=nonce))
                return
            except IntegrityError:
                continue  # another request created the row first: compare again
        raise AuthError("the nonce was already used; sign with a higher nonce")
