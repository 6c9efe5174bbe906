"""The keeper agent: enforces this provider's agreements on chain.

It learns of agreements for the provider's assets from chain events, read from a cursor kept
in the store and in bounded block ranges; when a job under an agreement ends it records what
was delivered; and it settles each agreement once:

- the agreement's jobs are all delivered (or its time out is near and some were): compute is
  fulfilled with the hash of the delivered jobs' signed receipts, and the escrow pays the
  publisher;
- a job under it ended in a failure of the provider's (:mod:`atoll.models.charges`) and
  nothing was delivered under it: compute is aborted at once and the consumer refunded;
- the time out passed with nothing delivered: compute is aborted and the consumer refunded.

Data access agreements (:mod:`atoll.chain.access_ledger`) are settled the same way: once each
of the asset's files was downloaded to its end (or the time out is near and some file was),
access is fulfilled and the escrow pays the publisher; the time out passed with nothing
served: access is aborted and the consumer refunded.

Everything it decides is in the store before it acts on chain, and every chain action is
checked against the chain's own state first, so a restart after ``kill -9`` neither misses
an event nor acts twice (the contracts refuse a second claim as well).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

from atoll import faults
from atoll.chain.access_ledger import REFUNDING as ACCESS_REFUNDING
from atoll.chain.access_ledger import AccessLedger, AccessRow, NewAccess
from atoll.chain.deployment import ChainNode
from atoll.chain.errors import ChainError, ChainRevert
from atoll.chain.ledger import REFUNDING, AgreementLedger, AgreementRow, NewAgreement
from atoll.chain.records import ConditionState
from atoll.models.charges import charged
from atoll.models.job import JobInfo

log = logging.getLogger("atoll.keeper")

EVENTS = (
    "ComputeAgreementCreated",
    "AccessAgreementCreated",
    "PaymentReleased",
    "PaymentRefunded",
)
#: most blocks read in one pass, so that settling is never held up by a long catch-up
SCAN_BLOCKS = 5_000


class Keeper:
    def __init__(
        self,
        node: ChainNode,
        ledger: AgreementLedger,
        is_ours: Callable[[str], bool],
        settle_margin: int = 60,
        scan_interval: float = 1.0,
        access: AccessLedger | None = None,
        files_of: Callable[[str], int] | None = None,
    ) -> None:
        self.node = node
        self.ledger = ledger
        #: the access agreements' ledger, and how many files each of our assets has
        self.access = access
        self.files_of = files_of or (lambda _did: 1)
        self.is_ours = is_ours
        self.settle_margin = settle_margin
        self.scan_interval = scan_interval
        self._wake = threading.Condition()
        self._poked = False
        self._stop = False
        self._thread: threading.Thread | None = None
        #: agreements the chain would not let us refund early: left to their time out
        self._refused: set[str] = set()
        #: settlements done, for whoever waits on one (the demo, tests)
        self.settled = threading.Condition()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        with self._wake:
            self._stop = False  # started again after a stop: another replica's turn ended
        self._thread = threading.Thread(target=self._loop, name="atoll-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def poke(self) -> None:
        """Something happened (a transaction, a job's end): look now, not at the next tick."""
        with self._wake:
            self._poked = True
            self._wake.notify_all()

    def job_ended(self, info: JobInfo, receipt_hash: str) -> None:
        """Record a job's end; ``receipt_hash`` (the sha256 of its signed receipt) is what
        goes on chain for a delivered job."""
        delivered = charged(info.status)
        touched = self.ledger.job_ended(info.jobId, delivered, receipt_hash if delivered else "")
        if touched:
            self.poke()

    # -- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            wait = self.scan_interval
            try:
                self.scan()
                wait = min(wait, self.settle_due())
            except ChainError as exc:
                log.warning("keeper: chain unavailable, retrying: %s", exc)
            except Exception:
                log.exception("keeper: unexpected error")
            with self._wake:
                if not self._poked and not self._stop:
                    self._wake.wait(max(wait, 0.01))
                self._poked = False
                if self._stop:
                    return

    def scan(self) -> None:
        """Learn agreements for our assets from events after the stored cursor."""
        contracts = self.node.contracts
        head = self.node.chain.block_number()
        cursor = self.ledger.cursor()
        start = contracts.book.deployed_block if cursor is None else cursor + 1
        while start <= head:
            end = min(head, start + SCAN_BLOCKS - 1)
            found: list[NewAgreement] = []
            access: list[NewAccess] = []
            settled: list[tuple[str, str]] = []
            for ev in contracts.events(start, end, names=EVENTS):
                aid = "0x" + bytes(ev.args["agreementId"]).hex()
                if ev.name == "ComputeAgreementCreated":
                    did = "did:atoll:" + bytes(ev.args["did"]).hex()
                    if not self.is_ours(did):
                        continue
                    agreement = contracts.agreement(bytes(ev.args["agreementId"]))
                    if agreement is not None:
                        found.append(
                            NewAgreement(
                                aid,
                                did,
                                agreement.consumer,
                                agreement.max_jobs,
                                agreement.deadline,
                            )
                        )
                elif ev.name == "AccessAgreementCreated":
                    did = "did:atoll:" + bytes(ev.args["did"]).hex()
                    if self.access is None or not self.is_ours(did):
                        continue
                    agreement = contracts.agreement(bytes(ev.args["agreementId"]))
                    if agreement is not None:
                        access.append(
                            NewAccess(
                                aid, did, agreement.consumer, self.files_of(did), agreement.deadline
                            )
                        )
                else:
                    how = "released" if ev.name == "PaymentReleased" else "refunded"
                    settled.append((aid, how))
            self.ledger.learn(found, cursor=end, access=access)
            for aid, how in settled:
                self.ledger.settle(aid, how)
                if self.access is not None:
                    self.access.settle(aid, how)
            start = end + 1

    def settle_due(self) -> float:
        """Settle what is due; return the seconds until the next agreement falls due."""
        now = self.node.now()
        next_due = float("inf")
        for row in self.ledger.open():
            if row.settled == REFUNDING:
                self._refund_now(row)  # closed for a refund before a restart: finish it
                continue
            if row.running:
                continue  # a job is still on it: its end will poke us
            full = row.delivered >= row.max_jobs
            if now > row.deadline:
                self._refund(row)  # too late to fulfil compute: the consumer gets it back
            elif row.delivered and (full or now >= row.deadline - self.settle_margin):
                self._release(row)
            elif row.failed and not row.delivered and row.agreement_id not in self._refused:
                # the provider failed it: the consumer gets it back now, unless a job was
                # counted against it meanwhile (that job's end brings us back here)
                if self.ledger.close_for_refund(row.agreement_id):
                    self._refund_now(row)
            elif row.delivered:
                next_due = min(next_due, row.deadline - self.settle_margin - now)
            else:
                next_due = min(next_due, row.deadline + 1 - now)
        if self.access is not None:
            next_due = min(next_due, self._settle_access(self.access, now))
        return next_due

    def _settle_access(self, ledger: AccessLedger, now: int) -> float:
        next_due = float("inf")
        for row in ledger.open():
            if row.settled == ACCESS_REFUNDING:
                self._refund_access(ledger, row)  # closed for a refund before a restart
            elif now > row.deadline:
                # too late to fulfil access: the consumer gets it back; closed first, so
                # that a download ending now is not counted as well
                if row.served or ledger.close_for_refund(row.agreement_id):
                    self._refund_access(ledger, row)
            elif row.served and (
                row.served >= row.files or now >= row.deadline - self.settle_margin
            ):
                self._release_access(ledger, row)
            elif row.served:
                next_due = min(next_due, row.deadline - self.settle_margin - now)
            else:
                next_due = min(next_due, row.deadline + 1 - now)
        return next_due

    def _release_access(self, ledger: AccessLedger, row: AccessRow) -> None:
        c = self.node.contracts
        aid = bytes.fromhex(row.agreement_id[2:])
        agreement = c.agreement(aid)
        if agreement is None:
            return
        if agreement.access.state is ConditionState.UNFULFILLED:
            c.fulfil_access(self.node.key, aid)
            faults.point("keeper.fulfilled")
            agreement = c.agreement(aid)
        how = "released"
        if agreement is not None and agreement.escrow.state is ConditionState.UNFULFILLED:
            if agreement.access.state is ConditionState.FULFILLED:
                c.release(self.node.key, aid)
            else:
                c.refund(self.node.key, aid)
                how = "refunded"
        elif agreement is not None and agreement.escrow.state is ConditionState.ABORTED:
            how = "refunded"
        faults.point("keeper.paid")
        ledger.settle(row.agreement_id, how)
        log.info("access agreement %s settled: %s", row.agreement_id, how)
        self._notify_settled()

    def _refund_access(self, ledger: AccessLedger, row: AccessRow) -> None:
        c = self.node.contracts
        aid = bytes.fromhex(row.agreement_id[2:])
        agreement = c.agreement(aid)
        if agreement is None:
            return
        if agreement.access.state is ConditionState.UNFULFILLED:
            c.abort_access(self.node.key, aid)
            agreement = c.agreement(aid)
        how = "refunded"
        if agreement is not None and agreement.escrow.state is ConditionState.UNFULFILLED:
            if agreement.access.state is ConditionState.FULFILLED:
                # fulfilled before a crash, in time: what was served is paid for
                c.release(self.node.key, aid)
                how = "released"
            elif agreement.lock.state is ConditionState.FULFILLED:
                c.refund(self.node.key, aid)
            else:
                how = "expired"  # never paid: nothing to give back
        elif agreement is not None and agreement.escrow.state is ConditionState.FULFILLED:
            how = "released"
        faults.point("keeper.paid")
        ledger.settle(row.agreement_id, how)
        log.info("access agreement %s settled: %s", row.agreement_id, how)
        self._notify_settled()

    def _notify_settled(self) -> None:
        with self.settled:
            self.settled.notify_all()

    def _release(self, row: AgreementRow) -> None:
        c = self.node.contracts
        aid = bytes.fromhex(row.agreement_id[2:])
        agreement = c.agreement(aid)
        if agreement is None:
            return
        if agreement.compute.state is ConditionState.UNFULFILLED:
            receipts = self.ledger.manifests(row.agreement_id)
            digest = (
                bytes.fromhex(receipts[0])
                if len(receipts) == 1
                else hashlib.sha256("".join(receipts).encode()).digest()
            )
            c.fulfil_compute(self.node.key, aid, digest)
            faults.point("keeper.fulfilled")
            agreement = c.agreement(aid)
        if agreement is not None and agreement.escrow.state is ConditionState.UNFULFILLED:
            if agreement.compute.state is ConditionState.FULFILLED:
                c.release(self.node.key, aid)
                how = "released"
            else:
                c.refund(self.node.key, aid)
                how = "refunded"
        else:
            how = "released"
        faults.point("keeper.paid")
        self.ledger.settle(row.agreement_id, how)
        log.info("agreement %s settled: %s", row.agreement_id, how)
        self._notify_settled()

    def _refund_now(self, row: AgreementRow) -> None:
        """Refund before the time out, which only the DID's owner or provider may do. Where
        the chain refuses it (the provider was taken off the DID), the time out refunds."""
        try:
            self._refund(row)
        except ChainRevert as exc:
            self._refused.add(row.agreement_id)
            self.ledger.settle(row.agreement_id, "")  # open again, for its time out
            log.warning(
                "agreement %s: cannot refund before its time out: %s", row.agreement_id, exc
            )

    def _refund(self, row: AgreementRow) -> None:
        c = self.node.contracts
        aid = bytes.fromhex(row.agreement_id[2:])
        agreement = c.agreement(aid)
        if agreement is None:
            return
        if agreement.compute.state is ConditionState.UNFULFILLED:
            c.abort_compute(self.node.key, aid)
            agreement = c.agreement(aid)
        how = "refunded"
        if agreement is not None and agreement.escrow.state is ConditionState.UNFULFILLED:
            if agreement.lock.state is ConditionState.FULFILLED:
                c.refund(self.node.key, aid)
            else:
                how = "expired"  # never paid: nothing to give back
        faults.point("keeper.paid")
        self.ledger.settle(row.agreement_id, how)
        log.info("agreement %s settled: %s", row.agreement_id, how)
        self._notify_settled()
