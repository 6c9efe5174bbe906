"""The Operator-Service as its own HTTP service (``atoll operator serve``).

Every call is signed by the caller's key (the provider's) over the method, path, query, body
and a nonce, and the signer must be on the allowed list: an unsigned or unknown caller is
refused before anything else happens.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from atoll import signing
from atoll.errors import AuthError, Forbidden
from atoll.models.job import RESULTS_PAGE, JobInfo, ResultsPage, Workflow
from atoll.operator.registry import LocalRegistry
from atoll.web.errors import install_error_handlers
from atoll.web.limits import BodyLimitMiddleware, RequestLimits, cap_recursion
from atoll.web.nonces import NonceStore
from atoll.web.streams import primed

PREFIX = "/api/v1/operator"
#: a workflow: raw code (1 MiB at most) and the DDOs of up to 33 assets
MAX_BODY = 16 << 20
H_ADDRESS, H_NONCE, H_SIGNATURE = "X-Atoll-Address", "X-Atoll-Nonce", "X-Atoll-Signature"


def request_message(method: str, path: str, query: str, body: bytes, nonce: int) -> str:
    return signing.message(
        "operator", method.upper(), path, "?", query, hashlib.sha256(body).hexdigest(), nonce
    )


class Register(BaseModel):
    workflow: Workflow


def create_operator_app(registry: LocalRegistry, nonces: NonceStore, allowed: set[str]) -> FastAPI:
    allowed_lower = {a.lower() for a in allowed}

    async def caller(request: Request) -> str:
        address = request.headers.get(H_ADDRESS, "")
        signature = request.headers.get(H_SIGNATURE, "")
        if not address or not signature:
            raise AuthError("operator calls must be signed")
        try:
            nonce = int(request.headers.get(H_NONCE, ""))
        except ValueError:
            raise AuthError("operator calls need an integer nonce") from None
        body = await request.body()
        text = request_message(request.method, request.url.path, request.url.query, body, nonce)

        def check() -> str:
            signer = signing.verify(text, signature, address)
            if signer.lower() not in allowed_lower:
                raise Forbidden("this caller is not allowed to use the operator")
            nonces.consume(signer, nonce, scope="operator")
            return signer

        # signature recovery and the nonce write, off the event loop
        return await anyio.to_thread.run_sync(check)

    router = APIRouter(prefix=PREFIX, dependencies=[Depends(caller)])

    @router.post("/compute", status_code=201)
    async def register(body: Register) -> JobInfo:
        return await registry.register(body.workflow)

    @router.post("/compute/admit")
    async def admit(body: Register) -> dict[str, bool]:
        await registry.admit(body.workflow)
        return {"room": True}

    @router.get("/compute")
    async def status(jobId: str = "", owner: str = "") -> Any:
        if jobId:
            return await registry.status(jobId)
        return await registry.list(owner)

    @router.get("/compute/wait")
    async def wait(
        jobId: str, timeout: float = Query(30, ge=0, le=60), since: int | None = None
    ) -> JobInfo:
        return await registry.wait(jobId, timeout, since)

    @router.put("/compute")
    async def stop(jobId: str) -> JobInfo:
        return await registry.stop(jobId)

    @router.delete("/compute")
    async def delete(jobId: str) -> JobInfo:
        return await registry.delete(jobId)

    @router.get("/logs")
    async def logs(jobId: str, follow: bool = False) -> StreamingResponse:
        return StreamingResponse(await primed(registry.logs(jobId, follow)))

    @router.get("/result")
    async def result(jobId: str, index: int) -> StreamingResponse:
        entry, stream = await registry.result(jobId, index)
        # json.dumps escapes every non-ASCII character: a header carries Latin-1 at most
        return StreamingResponse(
            await primed(stream),
            headers={"X-Atoll-Result": json.dumps(entry.model_dump(mode="json"))},
        )

    @router.get("/results")
    async def results(
        jobId: str, offset: int = Query(0, ge=0), limit: int = Query(RESULTS_PAGE, ge=1)
    ) -> ResultsPage:
        return await registry.results(jobId, offset, limit)

    cap_recursion()
    app = FastAPI(title="Atoll Operator-Service", version="0.1.0")
    # FastAPI parses a body before the caller's signature is checked: limit it first
    app.add_middleware(BodyLimitMiddleware, limits=RequestLimits(body_bytes=MAX_BODY))
    install_error_handlers(app)
    app.include_router(router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
