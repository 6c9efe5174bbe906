"""Changes passed between the provider replicas that share one PostgreSQL store.

Each replica sends the keys that changed (a job's id) with ``NOTIFY`` on the store's channel
and ``LISTEN``s on it over a connection of its own, so that a client waiting on replica A
hears of a job that ended on replica B the moment B wrote it. A change is written to the
store before it is sent, so whoever hears of it reads it. Sending runs on a thread of its
own: the engine never waits for it, and keys changed meanwhile go out together. While the
listening connection is lost, changes may go unheard: once it is back, ``lost`` is called
and every waiter reads again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from atoll.db import reader

log = logging.getLogger("atoll.channel")

#: seconds between two tries to open the listening connection again
RECONNECT_S = 1.0
#: how often the listener looks up from its connection to see whether it must stop
POLL_S = 0.5


def store_tag(engine: Engine) -> bytes:
    """What names this store on its server (its database and schema): processes sharing it
    share the tag, other stores on the server (another schema, another database) do not."""
    with engine.connect() as conn:
        database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    return hashlib.sha256(f"{database}/{schema}".encode()).digest()


def own_connection(engine: Engine, purpose: str) -> Any:
    """A connection to the store outside the pool, in autocommit, named ``purpose`` for the
    server's views (``pg_stat_activity``)."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    params = {**cparams, "autocommit": True, "application_name": purpose[:63]}
    return engine.dialect.loaded_dbapi.connect(*cargs, **params)


class StoreChannel:
    def __init__(
        self, engine: Engine, heard: Callable[[str], None], lost: Callable[[], None]
    ) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._heard = heard
        self._lost = lost
        #: marks what this process sent, which it has already announced to itself
        self._origin = uuid.uuid4().hex[:16]
        self._name = ""
        self._pending: dict[str, None] = {}
        self._wake = threading.Condition()
        self._stop = False
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conn: Any = None

    def start(self) -> None:
        """Open the channel; returns once this process listens on it (or could not yet)."""
        self._name = "atoll_" + store_tag(self._engine).hex()[:24]
        for target, name in ((self._send_loop, "send"), (self._listen_loop, "listen")):
            thread = threading.Thread(target=target, name=f"atoll-channel-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._listening.wait(10)

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

    def send(self, key: str) -> None:
        """Tell the other replicas that ``key`` changed (soon, from the sending thread)."""
        with self._wake:
            self._pending[key] = None
            self._wake.notify()

    # -- sending ---------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop:
                    self._wake.wait()
                if not self._pending:
                    return
                keys, self._pending = list(self._pending), {}
            payloads = [f"{self._origin}:{key}" for key in keys]
            try:
                with self._reader.connect() as conn:
                    conn.execute(
                        text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:ps AS text[])) p"),
                        {"channel": self._name, "ps": payloads},
                    )
            except Exception as exc:
                # the waiters elsewhere time out and read again; say what, never where
                log.warning(
                    "changes could not be sent to the other replicas: %s", type(exc).__name__
                )

    # -- listening -------------------------------------------------------------------------

    def _listen_loop(self) -> None:
        first = True
        while not self._stopping():
            try:
                conn = own_connection(self._engine, "atoll-channel")
            except Exception as exc:
                log.warning("cannot listen to the other replicas yet: %s", type(exc).__name__)
                self._listening.set()
                self._pause(RECONNECT_S)
                continue
            try:
                conn.execute(f"LISTEN {self._name}")
                if not first:
                    self._lost()
                first = False
                self._listening.set()
                while not self._stopping():
                    for note in conn.notifies(timeout=POLL_S):
                        origin, _, key = note.payload.partition(":")
                        if origin != self._origin:
                            self._heard(key)
            except Exception as exc:
                log.warning("the channel to the other replicas was lost: %s", type(exc).__name__)
                self._pause(RECONNECT_S)
            finally:
                with contextlib.suppress(Exception):  # a broken connection is closed already
                    conn.close()

    def _stopping(self) -> bool:
        with self._wake:
            return self._stop

    def _pause(self, seconds: float) -> None:
        with self._wake:
            if not self._stop:
                self._wake.wait(seconds)
