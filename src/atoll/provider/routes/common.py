"""What every route module shares: the request-scoped services and streaming helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

from atoll.chain.node import ChainNode
from atoll.provider.auth import RequestAuth
from atoll.provider.nonces import NonceStore
from atoll.provider.service import ProviderService


@dataclass
class ProviderContext:
    service: ProviderService
    auth: RequestAuth
    nonces: NonceStore
    provider_address: str = ""
    chain: ChainNode | None = None
    #: the external node's URL; empty when the provider serves its embedded chain itself
    chain_url: str = ""


def ctx(request: Request) -> ProviderContext:
    context: ProviderContext = request.app.state.provider
    return context


class Signed(BaseModel):
    consumerAddress: str = Field(min_length=1)
    nonce: int
    signature: str = Field(min_length=1)


def unsigned_body(body: BaseModel) -> dict[str, Any]:
    """The part of a body a signature binds: everything but the signing fields."""
    return body.model_dump(mode="json", exclude={"consumerAddress", "nonce", "signature"})


async def primed(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Read the first chunk now, so that an error surfaces as a status code rather than as a
    stream cut after a 200."""
    first = await anext(stream, None)

    async def rest() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in stream:
            yield chunk

    return rest()
