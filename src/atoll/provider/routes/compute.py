"""Compute: environments, quote, start, status (long-poll), stop, delete, logs, results.

Every route that touches a job is signed by the consumer, and a consumer sees only its own
jobs: status, logs and results included. An ended job is served only once its end has been
handled (checks, receipt, derived asset, keeper), and then only what the checks or its
reviewers released.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from atoll import signing
from atoll.errors import Conflict, NotFound
from atoll.models.job import RESULTS_PAGE, JobInfo, PublishOutput, ResultsPage
from atoll.models.receipt import SignedReceipt
from atoll.operator.registry import gone_if_expired
from atoll.provider.compute import JobRequest, undelivered_refused
from atoll.provider.ratelimit import check_address
from atoll.provider.routes.common import (
    ProviderContext,
    Signed,
    ctx,
    result_response,
    signed_digest,
)
from atoll.web.streams import primed

router = APIRouter(prefix="/api/services", tags=["compute"])


class QuoteBody(JobRequest):
    consumerAddress: str


class StartBody(JobRequest, Signed):
    #: make the outputs a new asset owned by the consumer
    publishOutput: PublishOutput | None = None


class JobRef(Signed):
    jobId: str = Field(min_length=1, max_length=64)


@router.get("/computeEnvironments", summary="The compute environments this provider offers")
def environments(c: ProviderContext = Depends(ctx)) -> list[dict[str, Any]]:
    return [e.public(c.compute.images.hosts) for e in c.compute.environments.values()]


@router.post("/initializeCompute", summary="Check a job without starting it, and quote it")
async def initialize(
    request: Request, body: QuoteBody, c: ProviderContext = Depends(ctx)
) -> dict[str, Any]:
    consumer = signing.normalise_address(body.consumerAddress)
    check_address(request, "initializeCompute", consumer)
    return await c.compute.quote(consumer, body)


@router.post("/compute", status_code=201, summary="Start a job (signed)")
async def start(
    body: StartBody,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> list[JobInfo]:
    consumer = await c.auth.acheck(
        "compute",
        body.consumerAddress,
        body.nonce,
        body.signature,
        body.dataset.did,
        digest,
    )
    info = await c.compute.start(consumer, body, body.publishOutput)
    if c.review is not None:
        c.review.prepare_soon(info)
    return [info]


@router.get("/compute", summary="Status of one job, or of all the caller's jobs (signed)")
async def status(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query("", max_length=64),
    wait: float = Query(0, ge=0, le=60, description="long-poll: seconds to wait for the end"),
    since: int | None = Query(None, description="with wait: return once the status differs"),
    c: ProviderContext = Depends(ctx),
) -> list[JobInfo]:
    consumer = await c.auth.acheck("status", consumerAddress, nonce, signature, jobId)
    infos = await c.compute.status(consumer, jobId, wait, since)
    return [await consumer_view(c, info) for info in infos]


async def consumer_view(c: ProviderContext, info: JobInfo) -> JobInfo:
    """An ended job's end is handled here too if the watcher has not got to it yet (it is
    idempotent), so that once a status says "ended", the checks, the receipt, the derived
    asset and the agreement's count all say so as well; then the job as its consumer may see
    it (held files by index, size and reasons only)."""
    if not info.terminal:
        return info
    info.derivedDID = (await c.ended(info)).derived_did
    return await anyio.to_thread.run_sync(c.reviews().consumer_view, info)


async def ended_owned(c: ProviderContext, consumer: str, job_id: str) -> JobInfo:
    """The consumer's job, once it has ended and been through the checks; a job that serves
    nothing or has not ended is refused."""
    info = await c.compute.owned(consumer, job_id)
    undelivered_refused(info)
    if not info.terminal:
        raise Conflict("the job has not finished; results come when it ends")
    if info.removed:
        raise NotFound("the job's results were removed")
    await c.ended(info)
    return info


@router.get("/computeReceipt", summary="The job's signed execution receipt (signed)")
async def receipt(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    c: ProviderContext = Depends(ctx),
) -> SignedReceipt:
    consumer = await c.auth.acheck("receipt", consumerAddress, nonce, signature, jobId)
    info = await c.compute.owned(consumer, jobId)
    if not info.terminal:
        raise Conflict("the job has not ended; its receipt comes when it does")
    outcome = await c.ended(info)
    releases = await anyio.to_thread.run_sync(c.reviews().releases, jobId)
    return outcome.receipt.model_copy(update={"releases": releases})


@router.put("/compute", summary="Stop a job (signed)")
async def stop(body: JobRef, c: ProviderContext = Depends(ctx)) -> list[JobInfo]:
    consumer = await c.auth.acheck(
        "stop", body.consumerAddress, body.nonce, body.signature, body.jobId
    )
    return [await c.compute.stop(consumer, body.jobId)]


@router.delete("/compute", summary="Delete a finished job's results and logs (signed)")
async def delete(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    c: ProviderContext = Depends(ctx),
) -> list[JobInfo]:
    consumer = await c.auth.acheck("delete", consumerAddress, nonce, signature, jobId)
    return [await c.compute.delete(consumer, jobId)]


@router.get("/computeResult", summary="One result file by index (signed)")
async def result(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    index: int = Query(ge=0),
    c: ProviderContext = Depends(ctx),
) -> StreamingResponse:
    consumer = await c.auth.acheck("result", consumerAddress, nonce, signature, jobId, index)
    info = await ended_owned(c, consumer, jobId)
    gone_if_expired(info)
    released = await c.reviews().released(info, index)
    entry, stream = await c.reviews().stream(jobId, released)
    return await result_response(entry, stream)


@router.get("/computeResults", summary="A page of the job's results, in index order (signed)")
async def results(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    offset: int = Query(0, ge=0),
    limit: int = Query(RESULTS_PAGE, ge=1, le=RESULTS_PAGE),
    c: ProviderContext = Depends(ctx),
) -> ResultsPage:
    consumer = await c.auth.acheck("results", consumerAddress, nonce, signature, jobId, offset)
    await ended_owned(c, consumer, jobId)
    page = await c.compute.results(consumer, jobId, offset, limit)
    page.results = await anyio.to_thread.run_sync(c.reviews().redact_page, jobId, page.results)
    return page


@router.get("/computeLogs", summary="The job's output log; with follow, live (signed)")
async def logs(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    follow: bool = False,
    c: ProviderContext = Depends(ctx),
) -> StreamingResponse:
    consumer = await c.auth.acheck("logs", consumerAddress, nonce, signature, jobId)
    stream = await log_stream(c, consumer, jobId, follow)
    return StreamingResponse(await primed(stream), media_type="text/plain; charset=utf-8")


async def log_stream(
    c: ProviderContext, consumer: str, job_id: str, follow: bool
) -> AsyncIterator[bytes]:
    """The consumer's job's log as the consumer may read it: as it is written for unchecked
    data, otherwise once the job has ended and the checks released it (the API's route and
    the dashboard's)."""
    info = await c.compute.owned(consumer, job_id)
    undelivered_refused(info)
    policy = await anyio.to_thread.run_sync(c.reviews().policy, info)
    if policy.mode == "off" and not info.terminal:
        # unchecked data: the log may be read as it is written
        return await c.compute.logs(consumer, job_id, follow)
    if not info.terminal:
        # the log may echo the data: it is checked at the end like any output, and a
        # consumer never reads a line of it before then
        if not follow:
            raise Conflict(
                "the job's log is checked when the job ends, and served then if it passes"
            )
        while not info.terminal:
            info = await c.compute.registry.wait(job_id, 60)
    info = await ended_owned(c, consumer, job_id)
    gone_if_expired(info)
    index = await anyio.to_thread.run_sync(c.reviews().log_index, info)
    released = await c.reviews().released(info, index)
    _entry, stream = await c.reviews().stream(job_id, released)
    return stream
