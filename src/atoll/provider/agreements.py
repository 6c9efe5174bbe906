"""The on-chain Service Agreement check at compute start.

A job runs only under an agreement that exists on chain, was made from an approved
template, is for this dataset, belongs to the caller, whose DID is its owner's on chain and
names this provider, pays that owner the dataset's price in our token with the payment
locked in escrow, allows the jobs and the time out the dataset offers (:mod:`.terms`), has
not timed out and has jobs left. Each refusal has its own message. Jobs are counted here,
all datasets of a job at once, in the provider's ledger.
"""

from __future__ import annotations

import re

import anyio

from atoll.chain.deployment import ChainNode, address_of
from atoll.chain.errors import ChainError
from atoll.chain.ledger import AgreementLedger, NewAgreement
from atoll.chain.records import ConditionState, TemplateState, did_bytes
from atoll.errors import AtollError, BadRequest, Forbidden, NotFound, RemoteError
from atoll.models.ddo import DDO
from atoll.models.job import JobInfo
from atoll.provider.terms import check_owner, check_terms
from atoll.provider.watcher import JobWatcher

AGREEMENT_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")


class PaymentRequired(AtollError):
    status_code = 402


class AgreementAuthorizer:
    def __init__(self, node: ChainNode, ledger: AgreementLedger, watcher: JobWatcher) -> None:
        self.node = node
        self.ledger = ledger
        self.watcher = watcher
        self.provider = address_of(node.key)

    async def authorize(self, consumer: str, dataset: DDO, agreement_id: str) -> None:
        await anyio.to_thread.run_sync(self._check, consumer, dataset, agreement_id)

    def _check(self, consumer: str, dataset: DDO, agreement_id: str) -> None:
        did = dataset.id
        if not agreement_id:
            raise PaymentRequired(
                f"compute on {did} needs a Service Agreement: order one with "
                f"`atoll compute order {did}`"
            )
        if not AGREEMENT_ID.match(agreement_id):
            raise BadRequest("an agreement id is 0x followed by 64 hex digits")
        aid = agreement_id.lower()
        c = self.node.contracts
        try:
            agreement = c.agreement(bytes.fromhex(aid[2:]))
            if agreement is None:
                raise NotFound(f"unknown agreement {aid}")
            template_ok = c.template_state(agreement.template) is TemplateState.APPROVED
            record = c.did_record(did)
            now = self.node.now()
        except ChainError as exc:
            raise RemoteError(f"the chain could not be read: {exc}", 503) from None
        if not template_ok:
            raise Forbidden(f"agreement {aid} was made from a template that is not approved")
        if agreement.did != did_bytes(did):
            raise Forbidden(f"agreement {aid} is for another dataset")
        if agreement.consumer.lower() != consumer.lower():
            raise Forbidden(f"agreement {aid} belongs to another consumer")
        check_owner(dataset, record, self.provider)
        if agreement.receiver.lower() != dataset.owner.lower():
            raise Forbidden(f"agreement {aid} pays another address than the owner of {did}")
        check_terms(aid, dataset, agreement, c.book.token)
        if agreement.lock.state is not ConditionState.FULFILLED:
            raise PaymentRequired(f"the payment of agreement {aid} is not locked in escrow")
        if agreement.compute.state is not ConditionState.UNFULFILLED:
            raise Forbidden(f"agreement {aid} is already settled")
        if agreement.compute.timed_out(now):
            raise Forbidden(f"agreement {aid} has timed out")
        self.ledger.ensure(
            NewAgreement(aid, did, agreement.consumer, agreement.max_jobs, agreement.deadline)
        )

    async def reserve(self, job_id: str, agreement_ids: list[str]) -> None:
        ids = [a.lower() for a in agreement_ids]
        await anyio.to_thread.run_sync(self.ledger.reserve, job_id, ids)

    async def release(self, job_id: str) -> None:
        await anyio.to_thread.run_sync(self.ledger.unreserve, job_id)

    async def job_started(self, job: JobInfo) -> None:
        await anyio.to_thread.run_sync(self.ledger.job_started, job.jobId)
        self.watcher.track(job.jobId)
