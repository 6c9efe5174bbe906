"""The release queue: reviewers list the files the checks held, inspect one (the checks'
report, its bytes, its columns against the inputs'), and approve or reject it with a reason.

Every route is signed by the reviewer: a dataset's owner or an address its output policy
names. Nobody reviews the outputs of their own job; another reviewer's job is unknown.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from atoll.errors import Conflict
from atoll.models.receipt import ReviewDecision
from atoll.provider.routes.common import ProviderContext, Signed, ctx, signed_digest
from atoll.web.streams import primed

router = APIRouter(prefix="/api/services", tags=["review"])


class DecisionBody(Signed):
    jobId: str = Field(min_length=1, max_length=64)
    index: int = Field(ge=0)
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/review", summary="The held files the caller may review (signed)")
async def queue(
    consumerAddress: str, nonce: int, signature: str, c: ProviderContext = Depends(ctx)
) -> list[dict[str, Any]]:
    reviewer = await c.auth.acheck("review-list", consumerAddress, nonce, signature)
    return await anyio.to_thread.run_sync(c.reviews().queue, reviewer)


@router.get("/review/item", summary="One checked file: report, decisions, columns (signed)")
async def item(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    index: int = Query(ge=0),
    c: ProviderContext = Depends(ctx),
) -> dict[str, Any]:
    reviewer = await c.auth.acheck("review-show", consumerAddress, nonce, signature, jobId, index)
    return await c.reviews().item(reviewer, jobId, index)


@router.get("/review/file", summary="The bytes of one checked file, for its reviewers (signed)")
async def file(
    consumerAddress: str,
    nonce: int,
    signature: str,
    jobId: str = Query(min_length=1, max_length=64),
    index: int = Query(ge=0),
    c: ProviderContext = Depends(ctx),
) -> StreamingResponse:
    reviewer = await c.auth.acheck("review-file", consumerAddress, nonce, signature, jobId, index)
    state, stream = await c.reviews().file(reviewer, jobId, index)
    return StreamingResponse(
        await primed(stream),
        media_type="application/octet-stream",
        headers={"Content-Length": str(state.size), "X-Atoll-Sha256": state.sha256},
    )


@router.post("/review", summary="Approve or reject one held file, with a reason (signed)")
async def decide(
    body: DecisionBody,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> dict[str, Any]:
    reviewer = await c.auth.acheck(
        "review",
        body.consumerAddress,
        body.nonce,
        body.signature,
        body.jobId,
        body.index,
        digest,
    )
    return await record_decision(
        c,
        reviewer,
        body.jobId,
        body.index,
        body.decision,
        body.reason,
        digest,
        body.nonce,
        body.signature,
    )


async def record_decision(
    c: ProviderContext,
    reviewer: str,
    job_id: str,
    index: int,
    decision: Literal["approve", "reject"],
    reason: str,
    digest: str,
    nonce: int,
    signature: str,
) -> dict[str, Any]:
    """A verified reviewer's signed decision, recorded (the API's route and the dashboard's)."""
    await c.reviews().reviewing(reviewer, job_id)
    outcomes = c.outcomes
    outcome = await anyio.to_thread.run_sync(outcomes.get, job_id) if outcomes else None
    if outcome is None:
        raise Conflict(f"the end of job {job_id} is still being recorded; try again")
    made = ReviewDecision(
        reviewer=reviewer,
        decision=decision,
        reason=reason,
        bodyDigest=digest,
        nonce=nonce,
        signature=signature,
    )
    receipt_sha = outcome.receipt.receipt.sha256()
    return await c.reviews().decide(reviewer, job_id, index, made, receipt_sha)
