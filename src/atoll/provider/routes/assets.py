"""Assets: publish, list, search, get; the nonce endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import Field

from atoll import signing
from atoll.errors import Forbidden, NotFound
from atoll.models.ddo import AccessOffer, ComputePolicy, Metadata
from atoll.models.source import SourceAccess
from atoll.provider.ratelimit import check_address
from atoll.provider.routes.common import ProviderContext, Signed, ctx, signed_digest
from atoll.provider.routes.mock import with_mock

router = APIRouter(prefix="/api/services", tags=["assets"])


class PublishBody(Signed):
    metadata: Metadata
    #: absolute paths on the provider's host, or URL (https://, http://) and S3 (s3://bucket/
    #: key?region=…&endpoint=…) locations it fetches; kept private, never served
    files: list[str] = Field(min_length=1, max_length=1000)
    #: headers for the URL files, keys for the S3 files; kept private, never served
    sourceAccess: SourceAccess | None = None
    compute: ComputePolicy = Field(default_factory=ComputePolicy)
    timeout: int | None = Field(default=None, ge=0)
    #: price of one agreement in the token's smallest unit; the provider's default if absent
    price: int | None = Field(default=None, ge=0, lt=2**256)
    #: offer the files for download too, under access agreements at this price
    access: AccessOffer | None = None


class PolicyBody(Signed):
    compute: ComputePolicy


@router.get("/nonce", summary="The highest nonce this address used lately, and the clock")
def nonce(request: Request, userAddress: str, c: ProviderContext = Depends(ctx)) -> dict[str, int]:
    address = signing.normalise_address(userAddress)
    check_address(request, "nonce", address)
    # "now" is the provider's clock in the nonces' unit: a client whose clock is off signs
    # with this instead (any unused nonce near it is accepted)
    return {"nonce": c.nonces.current(address), "now": c.nonces.now()}


@router.post("/assets", status_code=201, summary="Publish an asset (signed by the publisher)")
def publish(
    body: PublishBody,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> dict[str, Any]:
    publisher = c.auth.check(
        "publish",
        body.consumerAddress,
        body.nonce,
        body.signature,
        digest,
    )
    ddo = c.publishing.publish(
        publisher,
        body.metadata,
        body.files,
        body.compute,
        body.timeout,
        body.price,
        body.access,
        source_access=body.sourceAccess,
    )
    return ddo.public_json()


@router.get("/assets", summary="List or search assets")
def search(
    q: str = Query("", max_length=256, description="words that must all appear"),
    tag: str = Query("", max_length=64),
    type: str = Query("", pattern="^(|dataset|algorithm)$"),
    owner: str = Query("", max_length=42),
    limit: int = Query(50, ge=1, le=500),
    # within the store's 64-bit integers
    offset: int = Query(0, ge=0, lt=2**63),
    c: ProviderContext = Depends(ctx),
) -> dict[str, Any]:
    total, ddos = c.publishing.assets.search(q, tag, type, owner, limit, offset)
    return {"total": total, "assets": [d.public_json() for d in ddos]}


@router.get("/assets/{did}", summary="One asset's DDO")
def get(did: str, c: ProviderContext = Depends(ctx)) -> dict[str, Any]:
    return with_mock(c, c.publishing.assets.get(did).public_json())


@router.put("/assets/{did}/policy", summary="Set an asset's compute policy (owner only)")
def set_policy(
    did: str,
    body: PolicyBody,
    digest: str = Depends(signed_digest),
    c: ProviderContext = Depends(ctx),
) -> dict[str, Any]:
    owner = c.auth.check(
        "policy",
        body.consumerAddress,
        body.nonce,
        body.signature,
        did,
        digest,
    )
    return c.publishing.set_policy(owner, did, body.compute).public_json()


@router.get("/download", summary="One file of an asset whose access service allows it (signed)")
def download(
    consumerAddress: str,
    nonce: int,
    signature: str,
    did: str = Query(min_length=1, max_length=80),
    index: int = Query(ge=0),
    c: ProviderContext = Depends(ctx),
) -> FileResponse:
    caller = c.auth.check("download", consumerAddress, nonce, signature, did, index)
    ddo = c.publishing.assets.get(did)
    if ddo.service("access") is None:
        raise Forbidden(f"{did} offers no access service: its files cannot be downloaded")
    if ddo.owner.lower() != caller.lower():
        raise Forbidden(f"only the owner of {did} may download its files")
    files = c.publishing.assets.files(did)
    if index >= len(files):
        raise NotFound(f"file index {index} is out of range (the asset has {len(files)})")
    return FileResponse(
        files[index].location, media_type=files[index].contentType, filename=f"{index}"
    )
