"""Wake waiters the moment a job changes: no polling between the engine and the API.

Worker threads call :meth:`Notifier.notify`; asyncio handlers wait on a :class:`Listener`.
A handler registers its listener *before* it reads the job's state, so a change made between
the read and the wait is not missed.
"""

from __future__ import annotations

import asyncio
import threading


class Listener:
    def __init__(self, notifier: Notifier, key: str) -> None:
        self._notifier = notifier
        self._key = key
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] = self._loop.create_future()

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
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, set[Listener]] = {}

    def listen(self, key: str) -> Listener:
        listener = Listener(self, key)
        with self._lock:
            self._listeners.setdefault(key, set()).add(listener)
        return listener

    def notify(self, key: str) -> None:
        with self._lock:
            listeners = self._listeners.pop(key, set())
        for listener in listeners:
            listener._fire()

    def _discard(self, key: str, listener: Listener) -> None:
        with self._lock:
            group = self._listeners.get(key)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[key]
