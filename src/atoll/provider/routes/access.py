"""The data access service: the files an access agreement lets its consumer download, and
each file streamed, whole or from a byte range (signed)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from atoll.errors import NotFound
from atoll.provider.access import AccessService, parse_range
from atoll.provider.disposition import attachment
from atoll.provider.routes.common import ProviderContext, ctx
from atoll.web.streams import primed

router = APIRouter(prefix="/api/services", tags=["access"])

AgreementQuery = Query("", max_length=66, description="the access agreement's id")


def service(c: ProviderContext) -> AccessService:
    if c.access is None:
        raise NotFound("this provider serves no data access")
    return c.access


@router.get("/accessFiles", summary="The files an access agreement lets you download (signed)")
async def access_files(
    consumerAddress: str,
    nonce: int,
    signature: str,
    did: str = Query(min_length=1, max_length=80),
    agreementId: str = AgreementQuery,
    c: ProviderContext = Depends(ctx),
) -> dict[str, Any]:
    access = service(c)
    consumer = await c.auth.acheck(
        "accessFiles", consumerAddress, nonce, signature, did, agreementId
    )
    return await anyio.to_thread.run_sync(access.files, consumer, did, agreementId)


@router.get(
    "/access",
    summary="Download one file under an access agreement; Range resumes (signed)",
    description="The whole file (200), or with `Range: bytes=a-b`, `a-` or `-n` the bytes "
    "asked for (206, with `Content-Range`); a range past the end is answered 416.",
    response_class=StreamingResponse,
    responses={200: {"description": "The whole file", "content": {"application/octet-stream": {}}}},
)
async def access_download(
    request: Request,
    consumerAddress: str,
    nonce: int,
    signature: str,
    did: str = Query(min_length=1, max_length=80),
    index: int = Query(ge=0, lt=2**31),
    agreementId: str = AgreementQuery,
    c: ProviderContext = Depends(ctx),
) -> StreamingResponse:
    access = service(c)
    consumer = await c.auth.acheck(
        "access", consumerAddress, nonce, signature, did, agreementId, index
    )
    download = await anyio.to_thread.run_sync(access.download, consumer, did, agreementId, index)
    size = download.file.size
    span = parse_range(request.headers.get("range"), size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(span.length),
        "Content-Disposition": attachment(str(index)),
        "X-Atoll-Sha256": download.file.sha256,
    }
    if span.partial:
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{size}"
    return StreamingResponse(
        await primed(access.stream(download, span)),
        status_code=206 if span.partial else 200,
        media_type=download.file.contentType,
        headers=headers,
    )
