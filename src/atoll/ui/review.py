"""The review queue in the browser: each held file with the checks' report, a preview with
the flagged cells and rows highlighted, histograms of its numeric columns, the decisions so
far, and approve or reject with a reason.

A decision is the reviewer's signed request, as with the API: the page has the reviewer's
wallet sign the same text ``atoll review approve`` signs, and the signature goes into the
release record and the receipt. Images of a job's are served apart, as a document with a
sandboxing CSP, and shown only through ``<img>``.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from eth_hash.auto import keccak
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, ValidationError

from atoll import signing
from atoll.disclosure.report import Finding
from atoll.errors import BadRequest
from atoll.provider.routes.review import record_decision
from atoll.ui import plots, preview
from atoll.ui.web import SANDBOXED, acting, provider, render, signed_in

router = APIRouter()

PAGE = 50


@router.get("/review", response_class=HTMLResponse)
async def queue(request: Request, offset: int = Query(0, ge=0, lt=2**31)) -> HTMLResponse:
    session = signed_in(request)
    review = provider(request).reviews()
    items = await anyio.to_thread.run_sync(review.queue, session.address, offset, PAGE)
    total = await anyio.to_thread.run_sync(review.store.held_count, session.address)
    return render(
        request,
        "review.html",
        title="Review queue",
        items=items,
        total=total,
        offset=offset,
        page=PAGE,
    )


async def _head(request: Request, reviewer: str, job_id: str, index: int) -> bytes:
    _state, stream = await provider(request).reviews().file(reviewer, job_id, index)
    kept = bytearray()
    async for chunk in stream:
        kept += chunk
        if len(kept) >= preview.PREVIEW_BYTES:
            break
    return bytes(kept[: preview.PREVIEW_BYTES])


@router.get("/review/{job_id}/{index}", response_class=HTMLResponse)
async def item(request: Request, job_id: str, index: int) -> HTMLResponse:
    session = signed_in(request)
    found = await provider(request).reviews().item(session.address, job_id, index)
    head = await _head(request, session.address, job_id, index)
    kind = preview.kind_of(found["filename"], head)
    report = found.get("report") or {}
    findings = [Finding.model_validate(f) for f in report.get("findings", [])]
    table = preview.table_of(head, found["filename"], findings) if kind == "csv" else None
    charts = (
        [plots.histogram(h.column, h.low, h.high, h.counts) for h in table.histograms]
        if table
        else []
    )
    return render(
        request,
        "review_item.html",
        title="Review",
        item=found,
        kind=kind,
        table=table,
        text=preview.text_of(head) if kind in ("text", "svg") else "",
        charts=charts,
        own=found["consumer"] == session.address.lower(),
        pending=found["state"] == "held",
        already=any(d["reviewer"].lower() == session.address.lower() for d in found["decisions"]),
    )


@router.get("/review/{job_id}/{index}/image")
async def image(request: Request, job_id: str, index: int) -> Response:
    """The held file as an image, for ``<img>`` only: PNG or SVG by its content, in a
    sandbox with no script and no origin; anything else is refused."""
    session = signed_in(request)
    head = await _head(request, session.address, job_id, index)
    kind = preview.kind_of("", head)
    if kind not in ("png", "svg") or len(head) >= preview.PREVIEW_BYTES:
        raise BadRequest("this file is not an image that can be previewed")
    return Response(
        head,
        media_type="image/png" if kind == "png" else "image/svg+xml",
        headers={"Content-Security-Policy": SANDBOXED, "Content-Disposition": "inline"},
    )


class Decision(BaseModel):
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000)


def _decision(fields: dict[str, str]) -> Decision:
    try:
        return Decision.model_validate(
            {"decision": fields.get("decision"), "reason": fields.get("reason", "")}
        )
    except ValidationError:
        raise BadRequest("choose approve or reject and give a reason") from None


def _digest(job_id: str, index: int, d: Decision) -> str:
    # the digest the API's signed body would have: the body less its signing fields
    return signing.body_digest(
        {"jobId": job_id, "index": index, "decision": d.decision, "reason": d.reason}
    )


@router.post("/review/{job_id}/{index}/prepare")
async def prepare(request: Request, job_id: str, index: int) -> dict[str, Any]:
    """What the reviewer's wallet is to sign for this decision: the 32-byte hash of the
    review request's text (``personal_sign`` adds the EIP-191 prefix), and its nonce."""
    session, fields = await acting(request)
    d = _decision(fields)
    await provider(request).reviews().reviewing(session.address, job_id)
    nonce = provider(request).nonces.now()
    text = signing.message(
        "review", session.address, job_id, index, _digest(job_id, index, d), nonce
    )
    return {"hash": "0x" + keccak(text.encode()).hex(), "nonce": nonce}


@router.post("/review/{job_id}/{index}/decide")
async def decide(request: Request, job_id: str, index: int) -> dict[str, Any]:
    session, fields = await acting(request)
    d = _decision(fields)
    c = provider(request)
    digest = _digest(job_id, index, d)
    # the same check as the API's review route, with the session's address as the signer
    reviewer = await c.auth.acheck(
        "review",
        session.address,
        fields.get("nonce", ""),
        fields.get("signature", ""),
        job_id,
        index,
        digest,
    )
    done = await record_decision(
        c,
        reviewer,
        job_id,
        index,
        d.decision,
        d.reason,
        digest,
        int(fields["nonce"]),
        fields["signature"],
    )
    return {"state": done["state"]}
