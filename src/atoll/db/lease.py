"""One holder at a time among the processes sharing a PostgreSQL store: a session-level
advisory lock, held on a connection of the holder's own. When the holder's process dies,
its connection ends and the server frees the lock at once; another takes it at its next try.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

from sqlalchemy import Engine

from atoll.db.channel import own_connection, store_tag

log = logging.getLogger("atoll.lease")


class AdvisoryLease:
    def __init__(self, engine: Engine, name: str, holder: str = "") -> None:
        self._engine = engine
        self._name = name
        #: shown as the holding connection's application name (``pg_stat_activity``)
        self.holder = holder or name
        self._key: int | None = None
        #: kept open between tries, and while the lease is held
        self._conn: Any = None
        self._holding = False

    def take(self) -> bool:
        """Take the lease if nobody holds it; True if this process holds it now."""
        try:
            if self._key is None:
                digest = hashlib.sha256(store_tag(self._engine) + self._name.encode()).digest()
                self._key = int.from_bytes(digest[:8], "big", signed=True)
            if self._conn is None:
                self._conn = own_connection(self._engine, self.holder)
            if not self._holding:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
                self._holding = bool(row[0])
            return self._holding
        except Exception as exc:
            log.warning("the lease %s cannot be taken now: %s", self._name, type(exc).__name__)
            self._drop()
            return False

    def held(self) -> bool:
        """Whether this process still holds the lease: its connection is alive."""
        if self._conn is None or not self._holding:
            return False
        try:
            self._conn.execute("SELECT 1").fetchone()
            return True
        except Exception:
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is not None and self._key is not None and self._holding:
            with contextlib.suppress(Exception):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._holding = False
