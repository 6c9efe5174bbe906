"""Dry runs: a job on a dataset's mock data, with no agreement and no payment. Signed like
every compute route; a consumer sees only its own dry runs, and all of each: every output,
every log, and the check report a real job would get."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from atoll.errors import NotFound
from atoll.models.job import JobInfo
from atoll.models.mock import DryRunStatus
from atoll.provider.compute import JobRequest
from atoll.provider.dryrun import DryRuns
from atoll.provider.routes.common import (
    ProviderContext,
    Signed,
    ctx,
    result_response,
    signed_digest,
)

router = APIRouter(prefix="/api/services", tags=["compute"])


class DryRunBody(JobRequest, Signed):
    pass


def dryruns_of(c: ProviderContext) -> DryRuns:
    if c.dryruns is None:
        raise NotFound("this provider runs no dry runs")
    return c.dryruns


@router.post(
    "/dryrun", status_code=201, summary="Run an algorithm on the dataset's mock data (signed)"
)
async def start(
    body: DryRunBody,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> JobInfo:
    consumer = await c.auth.acheck(
        "dryrun", body.consumerAddress, body.nonce, body.signature, body.dataset.did, digest
    )
    return await dryruns_of(c).start(consumer, body)


@router.get("/dryrun", summary="A dry run's status, and its check report once ended (signed)")
async def status(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    wait: float = Query(0, ge=0, le=60, description="long-poll: seconds to wait for the end"),
    c: ProviderContext = Depends(ctx),
) -> DryRunStatus:
    consumer = await c.auth.acheck("dryrunStatus", consumerAddress, nonce, signature, jobId)
    return await dryruns_of(c).status(consumer, jobId, wait)


@router.get("/dryrunResult", summary="One output or log of a dry run, by index (signed)")
async def result(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    index: int = Query(ge=0),
    c: ProviderContext = Depends(ctx),
) -> StreamingResponse:
    consumer = await c.auth.acheck("dryrunResult", consumerAddress, nonce, signature, jobId, index)
    entry, stream = await dryruns_of(c).result(consumer, jobId, index)
    return await result_response(entry, stream)


@router.delete("/dryrun", summary="Delete an ended dry run's outputs and logs (signed)")
async def delete(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    c: ProviderContext = Depends(ctx),
) -> JobInfo:
    consumer = await c.auth.acheck("dryrunDelete", consumerAddress, nonce, signature, jobId)
    return await dryruns_of(c).delete(consumer, jobId)
