"""The publisher's pages: my assets and their policies, the jobs on my datasets with their
receipts, and earnings and escrow per agreement.

A policy is changed through the publishing service the API's policy route calls (owner only,
hosts within what the operator allows, a derived asset only narrowed); a job on my dataset is
shown to whoever the review service lets review it."""

from __future__ import annotations

import re
from typing import Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from atoll.errors import BadRequest, Forbidden
from atoll.models.ddo import ComputePolicy
from atoll.provider.routes.common import ProviderContext
from atoll.ui.web import acting, provider, render, signed_in

router = APIRouter()

PAGE = 50
_SPLIT = re.compile(r"[\s,]+")


def _list(text: str) -> list[str]:
    return [w for w in _SPLIT.split(text.strip()) if w]


@router.get("/mine", response_class=HTMLResponse)
def mine(request: Request, offset: int = Query(0, ge=0, lt=2**31)) -> HTMLResponse:
    session = signed_in(request)
    c = provider(request)
    total, ddos = c.publishing.assets.search("", "", "", session.address, PAGE, offset)
    return render(
        request, "mine.html", title="My assets", assets=ddos, total=total, offset=offset, page=PAGE
    )


def _owned_policy(c: ProviderContext, address: str, did: str) -> ComputePolicy:
    ddo = c.publishing.assets.get(did)
    if ddo.owner.lower() != address.lower():
        raise Forbidden(f"only the owner of {did} may change its policy")
    service = ddo.service("compute")
    if service is None or service.compute is None:
        raise BadRequest(f"{did} offers no compute service")
    return service.compute


@router.get("/assets/{did}/policy", response_class=HTMLResponse)
def policy_page(request: Request, did: str) -> HTMLResponse:
    session = signed_in(request)
    c = provider(request)
    policy = _owned_policy(c, session.address, did)
    return render(request, "policy.html", title="Policy", did=did, policy=policy)


def edited(policy: ComputePolicy, fields: dict[str, str]) -> ComputePolicy:
    """The policy with the form's fields; the form's words checked as the API's JSON is."""
    raw: dict[str, Any] = policy.model_dump(mode="json")
    raw["allowRawAlgorithm"] = fields.get("allowRawAlgorithm") == "on"
    raw["allowNetworkAccess"] = fields.get("allowNetworkAccess") == "on"
    raw["networkAllowlist"] = _list(fields.get("networkAllowlist", ""))
    raw["publisherTrustedAlgorithmPublishers"] = _list(
        fields.get("publisherTrustedAlgorithmPublishers", "")
    )
    out = raw["outputPolicy"]
    out["mode"] = fields.get("mode", out["mode"])
    out["reviewers"] = _list(fields.get("reviewers", ""))
    try:
        raw["maxJobs"] = int(fields.get("maxJobs", raw["maxJobs"]))
        out["reviewersRequired"] = int(fields.get("reviewersRequired", out["reviewersRequired"]))
        return ComputePolicy.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise BadRequest(f"the policy is not valid: {first}") from None


@router.post("/assets/{did}/policy")
async def set_policy(request: Request, did: str) -> Response:
    session, fields = await acting(request)
    c = provider(request)
    policy = edited(_owned_policy(c, session.address, did), fields)
    await anyio.to_thread.run_sync(c.publishing.set_policy, session.address, did, policy)
    return RedirectResponse(f"/ui/assets/{did}/policy?saved=1", status_code=303)


@router.get("/published", response_class=HTMLResponse)
async def published_jobs(request: Request, offset: int = Query(0, ge=0, lt=2**31)) -> HTMLResponse:
    """The checked jobs on my datasets (the jobs I may review), newest first."""
    session = signed_in(request)
    c = provider(request)
    store = c.reviews().store
    checked = await anyio.to_thread.run_sync(store.jobs_for, session.address, PAGE, offset)
    rows = []
    for job in checked:
        files = await anyio.to_thread.run_sync(store.files, job.job_id)
        rows.append({"checked": job, "files": files})
    return render(
        request, "published.html", title="Jobs on my datasets", rows=rows, offset=offset, page=PAGE
    )


@router.get("/published/{job_id}", response_class=HTMLResponse)
async def published_job(request: Request, job_id: str) -> HTMLResponse:
    """A job on my dataset: its files' states, the decisions and its receipt."""
    session = signed_in(request)
    c = provider(request)
    checked = await c.reviews().reviewing(session.address, job_id)
    store = c.reviews().store
    files = await anyio.to_thread.run_sync(store.files, job_id)
    outcome = await anyio.to_thread.run_sync(c.outcomes.get, job_id) if c.outcomes else None
    receipt = None
    if outcome is not None:
        releases = await anyio.to_thread.run_sync(c.reviews().releases, job_id)
        receipt = outcome.receipt.model_copy(update={"releases": releases})
    return render(
        request,
        "published_job.html",
        title=f"Job {job_id}",
        checked=checked,
        files=files,
        receipt_json=receipt.model_dump_json(indent=2) if receipt else "",
    )


@router.get("/earnings", response_class=HTMLResponse)
async def earnings(request: Request) -> HTMLResponse:
    """Each agreement on my datasets: its price, jobs used, and whether the payment is in
    escrow, released to me or refunded."""
    session = signed_in(request)
    c = provider(request)
    _total, ddos = c.publishing.assets.search("", "", "", session.address, 500, 0)
    prices = {}
    for d in ddos:
        service = d.service("compute") or d.service("access")
        prices[d.id] = service.price if service is not None else 0
    ledger = getattr(c.compute.authorizer, "ledger", None)
    rows = (
        await anyio.to_thread.run_sync(ledger.for_dids, list(prices)) if ledger is not None else []
    )
    escrow = sum(prices.get(a.did, 0) for a in rows if a.settled in ("", "refunding"))
    earned = sum(prices.get(a.did, 0) for a in rows if a.settled == "released")
    return render(
        request,
        "earnings.html",
        title="Earnings",
        rows=rows,
        prices=prices,
        escrow=escrow,
        earned=earned,
    )
