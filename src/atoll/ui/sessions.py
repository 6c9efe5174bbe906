"""Server-side sessions and single-use sign-in values.

The browser holds a random token; the store keeps only its sha256, the address it signs in,
the session's CSRF token and when it expires or was revoked. Sign-in values (SIWE nonces,
CLI challenges, one-time codes) are taken by a delete, so that of two uses exactly one wins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from atoll.db import reader
from atoll.db.schema import ui_challenges, ui_sessions

#: how long a signed-in session lasts
SESSION_SECONDS = 8 * 3600
#: how long a SIWE nonce or a CLI challenge may wait for its signature
CHALLENGE_SECONDS = 300
#: how long a one-time code from ``atoll ui login`` may wait to be opened
CODE_SECONDS = 60


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    address: str
    csrf: str
    method: str
    expires: float

    def csrf_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class SessionStore:
    def __init__(
        self,
        db: Engine,
        session_seconds: float = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._reader = reader(db)
        self.session_seconds = session_seconds
        self._clock = clock

    # -- sessions ---------------------------------------------------------------------------

    def open(self, address: str, method: str) -> tuple[str, Session]:
        """A new session for ``address``: the token for the cookie, and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(address, secrets.token_urlsafe(32), method, now + self.session_seconds)
        with self._db.begin() as conn:
            conn.execute(delete(ui_sessions).where(ui_sessions.c.expires < now))
            conn.execute(
                insert(ui_sessions).values(
                    token_hash=_hash(token),
                    address=address,
                    csrf=session.csrf,
                    method=method,
                    created=now,
                    expires=session.expires,
                    revoked=None,
                )
            )
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session the token opens; None if unknown, expired or revoked."""
        if not token or len(token) > 128:
            return None
        with self._reader.connect() as conn:
            row = conn.execute(
                select(ui_sessions).where(ui_sessions.c.token_hash == _hash(token))
            ).first()
        if row is None or row.revoked is not None or row.expires <= self._clock():
            return None
        return Session(row.address, row.csrf, row.method, row.expires)

    def revoke(self, token: str) -> None:
        with self._db.begin() as conn:
            conn.execute(
                update(ui_sessions)
                .where(ui_sessions.c.token_hash == _hash(token))
                .values(revoked=self._clock())
            )

    def revoke_all(self, address: str) -> int:
        """Revoke every live session of ``address``; how many there were."""
        with self._db.begin() as conn:
            done = conn.execute(
                update(ui_sessions)
                .where(ui_sessions.c.address == address, ui_sessions.c.revoked.is_(None))
                .values(revoked=self._clock())
            )
        return int(done.rowcount or 0)

    # -- single-use values ------------------------------------------------------------------

    def issue(self, kind: str, seconds: float, address: str = "", value: str = "") -> str:
        """A new single-use value of ``kind`` (or ``value`` itself), valid for ``seconds``."""
        value = value or secrets.token_hex(16)
        now = self._clock()
        with self._db.begin() as conn:
            conn.execute(delete(ui_challenges).where(ui_challenges.c.expires < now))
            conn.execute(
                insert(ui_challenges).values(
                    value_hash=_hash(value), kind=kind, address=address, expires=now + seconds
                )
            )
        return value

    def take(self, kind: str, value: str) -> str | None:
        """Use the value once: the address it was issued for ("" for none), or None if it is
        unknown, of another kind, already used or expired."""
        if not value or len(value) > 128:
            return None
        key = _hash(value)
        with self._db.begin() as conn:
            row = conn.execute(
                select(ui_challenges).where(
                    ui_challenges.c.value_hash == key, ui_challenges.c.kind == kind
                )
            ).first()
            if row is None:
                return None
            gone = conn.execute(delete(ui_challenges).where(ui_challenges.c.value_hash == key))
        if gone.rowcount != 1 or row.expires <= self._clock():
            return None
        return str(row.address)
