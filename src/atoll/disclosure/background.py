"""Work in C that lets go of the interpreter's lock (hashing, an automaton's scan), run on a
thread of its own while the checks go on with other work, and joined when its result is
needed: on a machine with a second core it costs the checks next to nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``call(*args)`` on a thread of its own from the moment this is made (or at once, on
    this one, with ``now``); :meth:`result` waits for it and returns what it returned (or
    raises what it raised)."""

    def __init__(
        self, call: Callable[..., T], *args: object, name: str = "atoll-checks", now: bool = False
    ) -> None:
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if now:
            # work too small to be worth a thread (starting one costs more): done here
            self._run(call, args)
            return
        self._thread = threading.Thread(target=self._run, args=(call, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., T], args: tuple[object, ...]) -> None:
        try:
            self._result = call(*args)
        except BaseException as error:  # raised again in the thread that asks
            self._error = error

    def result(self) -> T:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
