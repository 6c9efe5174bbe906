"""Repairing job starts cut by a crash.

A start counts the job against its agreements and records it as "starting" in one
transaction, then registers it with the operator under the same id, then marks it
"running". At start-up, before any request, each job still "starting" is settled one way:
the operator has it (it will run, or has run): it is running; the operator never got it: its
count is given back, so the agreement is as if the start had not happened.
"""

from __future__ import annotations

import logging

import anyio

from atoll.chain.ledger import AgreementLedger
from atoll.errors import AtollError, NotFound
from atoll.operator.registry import WorkflowRegistry

log = logging.getLogger("atoll.starts")


async def reconcile_starts(ledger: AgreementLedger, registry: WorkflowRegistry) -> None:
    for job_id in await anyio.to_thread.run_sync(ledger.starting_jobs):
        try:
            await registry.status(job_id)
        except NotFound:
            await anyio.to_thread.run_sync(ledger.unreserve, job_id)
            log.info("job %s was counted but never registered: its count is given back", job_id)
            continue
        except AtollError as exc:
            # the operator cannot say: keep the count (and the agreement open) until it can
            log.warning("job %s: its start cannot be confirmed yet: %s", job_id, exc.message)
            continue
        await anyio.to_thread.run_sync(ledger.job_started, job_id)
