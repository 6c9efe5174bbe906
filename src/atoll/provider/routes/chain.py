"""Where consumers find the chain: its JSON-RPC URL, the deployment, the provider's address;
and, on development chains only, a faucet."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from atoll import signing
from atoll.errors import NotFound
from atoll.provider.ratelimit import check_address
from atoll.provider.routes.common import ProviderContext, ctx

router = APIRouter(prefix="/api/services", tags=["chain"])


class FaucetBody(BaseModel):
    address: str


@router.get("/chain", summary="The chain this provider enforces agreements on")
def chain_info(request: Request, c: ProviderContext = Depends(ctx)) -> dict[str, Any]:
    if c.chain is None:
        raise NotFound("this provider runs without a chain")
    rpc = c.chain_url or str(request.base_url).rstrip("/") + "/chain"
    return {
        "chainId": c.chain.chain.chain_id,
        "rpcUrl": rpc,
        "development": c.chain.chain.is_dev,
        "providerAddress": signing.normalise_address(c.provider_address),
        "addresses": c.chain.contracts.book.to_dict(),
    }


@router.post("/faucet", summary="Gas money and tokens for an address (development chains)")
async def faucet(
    request: Request, body: FaucetBody, c: ProviderContext = Depends(ctx)
) -> dict[str, Any]:
    if c.chain is None:
        raise NotFound("this provider runs without a chain")
    address = signing.normalise_address(body.address)
    check_address(request, "faucet", address)
    node = c.chain
    if not node.chain.is_dev:
        raise NotFound("the faucet exists on development chains only")
    await anyio.to_thread.run_sync(node.faucet, address)
    return {
        "address": address,
        "ether": node.chain.balance(address),
        "tokens": node.contracts.balance_of(address),
    }
