"""Wake waiters the moment a job changes: no polling between the engine and the API.

Worker threads call :meth:`Notifier.notify`; asyncio handlers wait on a :class:`Listener`.
A handler registers its listener *before* it reads the job's state, so a change made between
the read and the wait is not missed.

Provider replicas sharing one PostgreSQL store pass changes on to each other: each
:meth:`Notifier.notify` is handed to the notifier's ``relay`` (the store's channel,
:mod:`atoll.db.channel`), and a change announced by another replica arrives through
:meth:`Notifier.heard`, waking the waiters here as a change made here would.

When a job changes, every handler waiting on it wakes at once and reads its state again.
:class:`SharedLook` lets them share that read: one store read per change, not one per
waiter.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Listener:
    """One handler's registration for the next change of one key."""

    def __init__(self, notifier: Notifier, key: str) -> None:
        self._notifier = notifier
        self._key = key
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] = self._loop.create_future()
        #: how many notifications (of any key) had been made when this listener registered
        self.seen = 0

    def _fire(self) -> None:
        self._loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """True if notified, False on timeout."""
        try:
            await asyncio.wait_for(asyncio.shield(self._future), max(timeout, 0))
            return True
        except TimeoutError:
            return False
        finally:
            self.close()

    def close(self) -> None:
        self._notifier._discard(self._key, self)


class Notifier:
    """Listeners by key; :meth:`notify` wakes (and forgets) every listener of a key."""

    def __init__(self, relay: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, set[Listener]] = {}
        self._announced = 0
        #: passes each change made here on to the other replicas sharing the store
        self.relay = relay

    def listen(self, key: str) -> Listener:
        listener = Listener(self, key)
        with self._lock:
            listener.seen = self._announced
            self._listeners.setdefault(key, set()).add(listener)
        return listener

    def notify(self, key: str) -> None:
        self.heard(key)
        if self.relay is not None:
            self.relay(key)

    def heard(self, key: str) -> None:
        """Wake the listeners of ``key`` here, for a change another replica announced."""
        with self._lock:
            self._announced += 1
            listeners = self._listeners.pop(key, set())
        for listener in listeners:
            listener._fire()

    def heard_all(self) -> None:
        """Wake every listener: changes may have been announced that this process did not
        hear (its channel to the other replicas was lost a while); each reads again."""
        with self._lock:
            self._announced += 1
            groups = list(self._listeners.values())
            self._listeners.clear()
        for group in groups:
            for listener in group:
                listener._fire()

    def announced(self) -> int:
        """How many notifications have been made so far, of any key."""
        with self._lock:
            return self._announced

    def _discard(self, key: str, listener: Listener) -> None:
        with self._lock:
            group = self._listeners.get(key)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[key]


class SharedLook(Generic[T]):
    """Listen, then read: the state behind a key, read once for all who may share the read.

    A read may serve a listener if no notification at all was made between that listener's
    registration and the read's start: every change notified before then is in what the read
    sees (a change is written before it is announced), and every later one fires the
    listener. The waiters a change wakes register again one after the other within an
    instant, so they share one read, while one that registered before some other
    notification starts a read of its own (rarely needed; never wrong).
    """

    def __init__(self, notifier: Notifier, read: Callable[[str], Awaitable[T]]) -> None:
        self._notifier = notifier
        self._read = read
        self._running: dict[str, tuple[int, asyncio.Future[T]]] = {}

    async def look(self, key: str) -> tuple[Listener, T]:
        """A listener for ``key``'s next change and ``key``'s state read after it registered.
        The caller waits on or closes the listener."""
        listener = self._notifier.listen(key)
        try:
            return listener, await self._shared(key, listener.seen)
        except BaseException:
            listener.close()  # a cancelled or failed read must not leave it registered
            raise

    async def _shared(self, key: str, seen: int) -> T:
        running = self._running.get(key)
        # a read started before this listener registered serves it only if nothing was
        # announced in between (a read started after it always would, but none can be yet)
        if running is None or running[0] != seen:
            # counted before the read starts: every change announced up to this count is
            # in what it reads
            started = self._notifier.announced()
            future = asyncio.ensure_future(self._read(key))
            running = (started, future)
            self._running[key] = running
            future.add_done_callback(lambda _: self._forget(key, future))
        # shielded: a caller that goes away does not cancel the read the others share
        return await asyncio.shield(running[1])

    def _forget(self, key: str, future: asyncio.Future[T]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved: its callers (if any are left) raise it
        running = self._running.get(key)
        if running is not None and running[1] is future:
            del self._running[key]
