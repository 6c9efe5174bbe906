"""What every route module shares: the request-scoped services and the signed body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from atoll import signing
from atoll.chain.deployment import ChainNode
from atoll.errors import NotFound
from atoll.models.job import JobInfo, ResultFile
from atoll.provider.auth import RequestAuth
from atoll.provider.compute import ComputeService
from atoll.provider.disposition import attachment
from atoll.provider.outcomes import JobOutcomes, Outcome
from atoll.provider.publishing import PublishingService
from atoll.provider.review import OutputReview
from atoll.web.nonces import NonceStore
from atoll.web.streams import primed

if TYPE_CHECKING:
    from atoll.provider.access import AccessService
    from atoll.provider.dryrun import DryRuns
    from atoll.provider.mock import MockData


@dataclass
class ProviderContext:
    publishing: PublishingService
    compute: ComputeService
    auth: RequestAuth
    nonces: NonceStore
    provider_address: str = ""
    chain: ChainNode | None = None
    #: the external node's URL; empty when the provider serves its embedded chain itself
    chain_url: str = ""
    outcomes: JobOutcomes | None = None
    #: what happens once a job has ended (checks, receipt, derived asset, keeper); idempotent
    on_job_end: Callable[[JobInfo], Awaitable[Outcome]] | None = None
    #: mock data of datasets, and dry runs on it
    mocks: MockData | None = None
    dryruns: DryRuns | None = None
    #: the disclosure checks' verdicts and the release queue
    review: OutputReview | None = None
    #: the data access service (downloads under access agreements)
    access: AccessService | None = None

    async def ended(self, info: JobInfo) -> Outcome:
        """The ended job's outcome, its end handled now if the watcher has not got to it yet:
        whatever a route serves of an ended job has been through the checks first."""
        if self.on_job_end is None or self.review is None:
            raise NotFound("this provider serves no results")
        return await self.on_job_end(info)

    def reviews(self) -> OutputReview:
        if self.review is None:
            raise NotFound("this provider serves no results")
        return self.review


def ctx(request: Request) -> ProviderContext:
    context: ProviderContext = request.app.state.provider
    return context


class Signed(BaseModel):
    consumerAddress: str = Field(min_length=1)
    nonce: int
    signature: str = Field(min_length=1)


SIGNING_FIELDS = frozenset({"consumerAddress", "nonce", "signature"})


async def signed_digest(request: Request) -> str:
    """The digest a body signature binds: of the JSON as sent, less the signing fields. Taken
    from the raw body, not the parsed model, so that both sides hash the same bytes' meaning
    whatever defaults the model fills in."""
    try:
        raw = await request.json()
    except ValueError:
        return ""
    if not isinstance(raw, dict):
        return ""
    return signing.body_digest({k: v for k, v in raw.items() if k not in SIGNING_FIELDS})


async def result_response(entry: ResultFile, stream: AsyncIterator[bytes]) -> StreamingResponse:
    """One result file as a download: its name as the client should save it, its size and
    the sha256 the client checks the bytes against."""
    return StreamingResponse(
        await primed(stream),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": attachment(entry.filename),
            "Content-Length": str(entry.filesize),
            "X-Atoll-Sha256": entry.sha256,
        },
    )
