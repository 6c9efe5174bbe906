"""Fault injection: named step boundaries where the process can kill itself.

Crash tests arm one point (the ``crash_at`` setting) and check that whatever the provider
had committed up to that boundary is repaired at the next start. Unarmed, a point costs one
comparison.
"""

from __future__ import annotations

import os
import signal

#: every boundary a test may arm, so that a misspelt name is refused instead of never firing
POINTS = frozenset(
    {
        # ComputeService.start
        "start.reserved",  # the agreements count the job; the operator has not got it
        "start.registered",  # the operator has the job; the ledger still says "starting"
        "start.tracked",  # the ledger says "running"; the consumer has no answer yet
        # a job's end: checks → receipt → derived asset → keeper
        "end.ended",  # the job ended; nothing of its end is recorded
        "end.checked",  # the outputs are checked and the verdict stored; no receipt yet
        "end.derived",  # the derived asset is registered; the receipt is not stored
        "end.outcome",  # the receipt is stored; the keeper has not recorded the delivery
        "end.recorded",  # the keeper recorded the delivery; nothing is settled
        # the keeper's settlement
        "keeper.fulfilled",  # compute fulfilled on chain; the escrow not yet released
        "keeper.paid",  # the escrow released or refunded on chain; the ledger not updated
    }
)

_armed = ""


def arm(point: str) -> None:
    """Kill this process (SIGKILL, as ``kill -9``) the first time ``point`` is reached."""
    global _armed
    if point and point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}; known: {', '.join(sorted(POINTS))}")
    _armed = point


def point(name: str) -> None:
    if _armed and name == _armed:
        os.kill(os.getpid(), signal.SIGKILL)
