"""One keeper at a time among the provider replicas sharing a PostgreSQL store.

Every replica has a keeper; only the one holding the store's keeper lease
(:class:`atoll.db.lease.AdvisoryLease`) runs it. The others try for the lease every
``check_every`` seconds and take it over when the holder dies: its connection ends, the
server frees the lock, and the next try takes it. Two keepers at once would do no harm to
the money (every chain action is checked against the chain first, and the contracts refuse a
second claim), but would send each transaction twice.
"""

from __future__ import annotations

import logging
import threading

from atoll.chain.keeper import Keeper
from atoll.db.lease import AdvisoryLease

log = logging.getLogger("atoll.keeper")

#: seconds between two looks at the lease: how long a takeover may take
CHECK_EVERY_S = 1.0


class KeeperTurn:
    def __init__(
        self, keeper: Keeper, lease: AdvisoryLease, check_every: float = CHECK_EVERY_S
    ) -> None:
        self.keeper = keeper
        self.lease = lease
        self.check_every = check_every
        self._wake = threading.Condition()
        self._stop = False
        self._keeping = False
        self._thread: threading.Thread | None = None

    @property
    def keeping(self) -> bool:
        """Whether this replica's keeper runs now."""
        with self._wake:
            return self._keeping

    def start(self) -> None:
        self._turn()  # the first look at once: a lone replica keeps from its start
        self._thread = threading.Thread(target=self._loop, name="atoll-keeper-turn", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.keeping:
            self.keeper.stop()
        self.lease.release()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if not self._stop:
                    self._wake.wait(self.check_every)
                if self._stop:
                    return
            try:
                self._turn()
            except Exception:
                log.exception("keeper: the lease could not be looked at")

    def _turn(self) -> None:
        if self.keeping:
            if not self.lease.held():
                # the store lost our session: another replica may hold the lease now
                self.keeper.stop()
                self._set(False)
                log.warning("keeper: this replica lost the keeper's lease; it stopped keeping")
        elif self.lease.take():
            self.keeper.start()
            self._set(True)
            log.info("keeper: this replica keeps the agreements")

    def _set(self, keeping: bool) -> None:
        with self._wake:
            self._keeping = keeping
