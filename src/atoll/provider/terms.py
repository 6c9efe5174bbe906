"""What an agreement must agree with at compute start: the dataset's offer and its owner.

The compute template takes the price, the number of jobs and the time out from whoever
creates the agreement; the offer is the DDO's compute service. An agreement whose terms are
not the offer's (50 jobs and a 31-year time out for one payment) is refused, each term with
its own message. And the DID must be the asset owner's on chain, naming this provider, so
that no one else is paid for it and this provider can settle it.
"""

from __future__ import annotations

from atoll.chain.records import Agreement, DidRecord
from atoll.errors import Forbidden
from atoll.models.ddo import DDO


def check_owner(dataset: DDO, record: DidRecord | None, provider: str) -> None:
    did = dataset.id
    if record is None:
        raise Forbidden(f"{did} is not registered on chain: no agreement can pay for it")
    if record.owner.lower() != dataset.owner.lower():
        raise Forbidden(
            f"{did} is registered on chain to {record.owner}, not to its owner "
            f"{dataset.owner}: no job runs on it"
        )
    if provider.lower() not in {p.lower() for p in record.providers}:
        raise Forbidden(
            f"{did} does not name this provider on chain: its agreements could not be settled here"
        )


def check_terms(aid: str, dataset: DDO, agreement: Agreement, token: str) -> None:
    """Raise :class:`Forbidden` unless the agreement's price, token, jobs and time out are
    those of ``dataset``'s compute service."""
    did = dataset.id
    service = dataset.service("compute")
    if service is None or service.compute is None:
        raise Forbidden(f"{did} offers no compute service")
    if agreement.token.lower() != token.lower():
        raise Forbidden(f"agreement {aid} pays in another token than this provider's")
    if agreement.price != service.price:
        word = "less" if agreement.price < service.price else "more"
        raise Forbidden(
            f"agreement {aid} pays {word} than the price of {did} "
            f"({agreement.price}, not {service.price})"
        )
    if agreement.max_jobs != service.compute.maxJobs:
        raise Forbidden(
            f"agreement {aid} allows {agreement.max_jobs} job(s), not the "
            f"{service.compute.maxJobs} that {did} offers per agreement"
        )
    timeout = agreement.deadline - agreement.created_at if agreement.deadline else 0
    if timeout != service.timeout:
        raise Forbidden(
            f"agreement {aid} times out after {timeout} s, not the {service.timeout} s "
            f"that {did} offers"
        )
