"""The consumer's pages: the catalogue, an asset, dry runs, my jobs (live status and logs
pushed as server-sent events), results and receipts.

Every job read goes through the services the signed API uses, with the session's address
where the API has the request's signer: a consumer sees its own jobs only, and only what the
checks or the reviewers released."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from atoll.errors import AtollError, BadRequest
from atoll.models.ddo import DDO
from atoll.models.job import JobInfo
from atoll.models.receipt import SignedReceipt
from atoll.provider.compute import AlgorithmRef, DatasetRef, JobRequest
from atoll.provider.routes.common import ProviderContext, result_response
from atoll.provider.routes.compute import consumer_view, ended_owned, log_stream
from atoll.provider.routes.dryrun import dryruns_of
from atoll.provider.routes.mock import download as mock_download
from atoll.sdk.verify import check_releases, check_signature
from atoll.ui import plots
from atoll.ui.web import acting, provider, render, signed_in
from atoll.ui.words import policy_words

router = APIRouter()

PAGE = 50
CATALOGUE_PAGE = 20
#: the jobs the overview's charts are drawn from
CHART_JOBS = 500


async def my_jobs(c: ProviderContext, address: str) -> list[JobInfo]:
    """The consumer's latest jobs, newest first (what the charts are drawn from)."""
    _total, jobs = await c.compute.page(address, 0, CHART_JOBS)
    return jobs


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> HTMLResponse:
    session = signed_in(request)
    c = provider(request)
    jobs = (await my_jobs(c, session.address))[:CHART_JOBS]
    return render(
        request,
        "overview.html",
        title="Overview",
        jobs=len(jobs),
        charts=[plots.durations(jobs), plots.queue_depth(jobs)],
    )


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue(
    request: Request,
    q: str = Query("", max_length=256),
    tag: str = Query("", max_length=64),
    offset: int = Query(0, ge=0, lt=2**31),
) -> HTMLResponse:
    c = provider(request)
    total, ddos = c.publishing.assets.search(q, tag, "", "", CATALOGUE_PAGE, offset)
    return render(
        request,
        "catalogue.html",
        title="Catalogue",
        q=q,
        tag=tag,
        total=total,
        assets=ddos,
        offset=offset,
        page=CATALOGUE_PAGE,
    )


def _price(ddo: DDO) -> int:
    service = ddo.service("compute") or ddo.service("access")
    return service.price if service is not None else 0


@router.get("/assets/{did}", response_class=HTMLResponse)
def asset(request: Request, did: str) -> HTMLResponse:
    c = provider(request)
    ddo = c.publishing.assets.get(did)
    service = ddo.service("compute")
    policy = service.compute if service is not None else None
    mock = None
    if c.mocks is not None:
        try:
            mock = c.mocks.offered(did)
        except AtollError:
            mock = None
    return render(
        request,
        "asset.html",
        title=ddo.metadata.name,
        ddo=ddo,
        price=_price(ddo),
        words=policy_words(policy),
        environments=[e.public() for e in c.compute.environments.values()],
        mock=mock,
    )


@router.get("/assets/{did}/mock")
def mock_file(request: Request, did: str) -> Response:
    return mock_download(did, provider(request))


@router.post("/assets/{did}/dryrun")
async def dry_run(request: Request, did: str) -> Response:
    session, fields = await acting(request)
    code = fields.get("rawcode", "")
    if not code.strip():
        raise BadRequest("write the algorithm's code to dry-run it")
    req = JobRequest(
        dataset=DatasetRef(did=did),
        algorithm=AlgorithmRef(rawcode=code),
        environment=fields.get("environment", "default") or "default",
    )
    info = await dryruns_of(provider(request)).start(session.address, req)
    return RedirectResponse(f"/ui/dryruns/{info.jobId}", status_code=303)


@router.get("/dryruns/{job_id}", response_class=HTMLResponse)
async def dry_run_page(request: Request, job_id: str) -> HTMLResponse:
    session = signed_in(request)
    status = await dryruns_of(provider(request)).status(session.address, job_id, 0)
    return render(request, "dryrun.html", title="Dry run", run=status, job=status.job)


@router.get("/dryruns/{job_id}/results/{index}")
async def dry_run_result(request: Request, job_id: str, index: int) -> StreamingResponse:
    session = signed_in(request)
    entry, stream = await dryruns_of(provider(request)).result(session.address, job_id, index)
    return await result_response(entry, stream)


@router.get("/dryruns/{job_id}/events")
async def dry_run_events(request: Request, job_id: str) -> StreamingResponse:
    session = signed_in(request)
    c = provider(request)
    runs = dryruns_of(c)
    first = await runs.status(session.address, job_id, 0)

    async def events() -> AsyncIterator[bytes]:
        run = first
        yield _event("status", _status(run.job))
        while not run.job.terminal:
            run = await runs.status(session.address, job_id, 30)
            yield _event("status", _status(run.job))
        yield _event("end", {})

    return _sse(events())


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(request: Request, offset: int = Query(0, ge=0, lt=2**31)) -> HTMLResponse:
    session = signed_in(request)
    c = provider(request)
    total, listed = await c.compute.page(session.address, offset, PAGE)
    page = list(await asyncio.gather(*(consumer_view(c, j) for j in listed)))
    return render(
        request,
        "jobs.html",
        title="My jobs",
        jobs=page,
        total=total,
        offset=offset,
        page=PAGE,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job(request: Request, job_id: str) -> HTMLResponse:
    session = signed_in(request)
    c = provider(request)
    info = await consumer_view(c, await c.compute.owned(session.address, job_id))
    receipt, problems = None, []
    if info.terminal:
        receipt = await _receipt(c, info)
        problems = _verify(c, receipt)
    return render(
        request,
        "job.html",
        title=f"Job {job_id}",
        job=info,
        receipt=receipt,
        problems=problems,
        receipt_json=receipt.model_dump_json(indent=2) if receipt else "",
    )


async def _receipt(c: ProviderContext, info: JobInfo) -> SignedReceipt:
    """The receipt the API's computeReceipt route serves, with the releases after review."""
    outcome = await c.ended(info)
    releases = await anyio.to_thread.run_sync(c.reviews().releases, info.jobId)
    return outcome.receipt.model_copy(update={"releases": releases})


def _verify(c: ProviderContext, receipt: SignedReceipt) -> list[str]:
    """What the SDK checks of a receipt: the provider's signature, and each release's."""
    problems = check_signature(receipt) + check_releases(receipt)
    if c.provider_address and receipt.receipt.provider.lower() != c.provider_address.lower():
        problems.append("the receipt names another provider")
    return problems


@router.get("/jobs/{job_id}/results/{index}")
async def job_result(request: Request, job_id: str, index: int) -> StreamingResponse:
    """One result, as the API's computeResult serves it: only a released one."""
    session = signed_in(request)
    c = provider(request)
    info = await ended_owned(c, session.address, job_id)
    released = await c.reviews().released(info, index)
    entry, stream = await c.reviews().stream(job_id, released)
    return await result_response(entry, stream)


def _status(info: JobInfo) -> dict[str, Any]:
    return {
        "status": info.status,
        "text": info.statusText,
        "terminal": info.terminal,
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _sse(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    """The job's status as it changes and its log as it may be read, pushed as server-sent
    events until the job has ended: an unchecked dataset's log line by line as it is
    written, a checked one's once the checks released it."""
    session = signed_in(request)
    c = provider(request)
    first = await c.compute.owned(session.address, job_id)
    policy = await anyio.to_thread.run_sync(c.reviews().policy, first)

    async def log() -> AsyncIterator[bytes]:
        try:
            stream = await log_stream(c, session.address, job_id, True)
            async for chunk in stream:
                yield _event("log", {"text": chunk.decode("utf-8", errors="replace")})
        except AtollError as exc:
            yield _event("log-refused", {"text": exc.message})

    async def events() -> AsyncIterator[bytes]:
        info = first
        yield _event("status", _status(info))
        if policy.mode == "off":
            async for message in log():
                yield message
        while not info.terminal:
            info = await c.compute.registry.wait(job_id, 30, info.status)
            yield _event("status", _status(info))
        yield _event("status", _status(await consumer_view(c, info)))
        if policy.mode != "off":
            async for message in log():
                yield message
        yield _event("end", {})

    return _sse(events())
