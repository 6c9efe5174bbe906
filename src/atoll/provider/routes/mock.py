"""Mock data: the owner infers a schema, sees it and approves it, or uploads a mock file;
everyone may read what is offered.

The owner's routes are signed; reading the offer and its file is not (mock data is public by
design, and holds no real row).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse
from pydantic import Field

from atoll.errors import NotFound
from atoll.models.mock import MockOffer, MockView
from atoll.provider.mock import MAX_MOCK_ROWS, MockData
from atoll.provider.routes.common import ProviderContext, Signed, ctx, signed_digest

router = APIRouter(prefix="/api/services", tags=["mock"])

Did = Path(min_length=1, max_length=80)


class InferBody(Signed):
    #: which of the dataset's files the schema is inferred from
    fileIndex: int = Field(default=0, ge=0, lt=1000)


class ApproveBody(Signed):
    #: the digest of the schema the owner saw (``schemaSha256`` of the view)
    schemaSha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int = Field(default=100, ge=1, le=MAX_MOCK_ROWS)
    seed: int = Field(default=0, ge=0, lt=2**32)


class AttachBody(Signed):
    #: the mock file, CSV text
    content: str


def mocks_of(c: ProviderContext) -> MockData:
    if c.mocks is None:
        raise NotFound("this provider offers no mock data")
    return c.mocks


def with_mock(c: ProviderContext, ddo: dict[str, Any]) -> dict[str, Any]:
    """A DDO as served, its compute service saying what mock data it offers, if any."""
    if c.mocks is None:
        return ddo
    try:
        offer = c.mocks.offered(ddo["id"])
    except NotFound:
        return ddo
    for service in ddo.get("services", []):
        if service.get("type") == "compute":
            service["mock"] = offer.model_dump(mode="json")
    return ddo


@router.post(
    "/assets/{did}/mock/schema",
    summary="Infer a mock schema from the dataset's file; offered once approved (owner, signed)",
)
def infer(
    body: InferBody,
    did: str = Did,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> MockView:
    owner = c.auth.check("mockInfer", body.consumerAddress, body.nonce, body.signature, did, digest)
    return mocks_of(c).propose(owner, did, body.fileIndex)


@router.get(
    "/assets/{did}/mock/schema",
    summary="The proposed or offered mock data, with its schema (owner, signed)",
)
def schema(
    consumerAddress: str,
    nonce: int,
    signature: str,
    did: str = Did,
    c: ProviderContext = Depends(ctx),
) -> MockView:
    owner = c.auth.check("mockSchema", consumerAddress, nonce, signature, did)
    return mocks_of(c).view(owner, did)


@router.post(
    "/assets/{did}/mock/approve",
    summary="Approve the proposed schema: mock rows are generated and offered (owner, signed)",
)
def approve(
    body: ApproveBody,
    did: str = Did,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> MockOffer:
    owner = c.auth.check(
        "mockApprove", body.consumerAddress, body.nonce, body.signature, did, digest
    )
    return mocks_of(c).approve(owner, did, body.schemaSha256, body.rows, body.seed)


@router.put("/assets/{did}/mock", summary="Upload mock data and offer it (owner, signed)")
def attach(
    body: AttachBody,
    did: str = Did,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> MockOffer:
    owner = c.auth.check(
        "mockAttach", body.consumerAddress, body.nonce, body.signature, did, digest
    )
    return mocks_of(c).attach(owner, did, body.content.encode())


@router.get("/assets/{did}/mock", summary="The mock data a dataset offers")
def offered(did: str = Did, c: ProviderContext = Depends(ctx)) -> MockOffer:
    return mocks_of(c).offered(did)


@router.get("/assets/{did}/mock/file", summary="The mock data file a dataset offers (CSV)")
def download(did: str = Did, c: ProviderContext = Depends(ctx)) -> FileResponse:
    mocks = mocks_of(c)
    offer = mocks.offered(did)
    return FileResponse(
        mocks.path(did),
        media_type="text/csv",
        filename="mock.csv",
        headers={"X-Atoll-Sha256": offer.sha256},
    )
