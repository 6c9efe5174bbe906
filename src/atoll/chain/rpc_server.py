"""The embedded chain served over JSON-RPC at ``/chain`` on the provider.

The embedded chain lives in the provider's process (one process owns its store), so
consumers reach it the way they would reach any node: with signed raw transactions over
standard JSON-RPC. Only what a wallet needs is served; nothing here signs for anyone, and
the development-only time controls are not exposed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from eth.exceptions import PyEVMError
from eth_abi.abi import encode
from eth_utils.exceptions import ValidationError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from rlp.exceptions import RLPException  # type: ignore[import-untyped]

from atoll.chain.base import Log, Receipt
from atoll.chain.embedded import DEFAULT_TX_GAS, EmbeddedChain
from atoll.chain.errors import ChainError, ChainRevert

ERROR_SELECTOR = bytes.fromhex("08c379a0")


def _hex(value: int) -> str:
    return hex(int(value))


def _data(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _bytes(value: Any) -> bytes:
    text = str(value or "0x")
    return bytes.fromhex(text.removeprefix("0x"))


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _revert(exc: ChainRevert) -> RpcError:
    payload = ERROR_SELECTOR + encode(["string"], [exc.reason])
    return RpcError(3, f"execution reverted: {exc.reason}", _data(payload))


def _log(log: Log) -> dict[str, Any]:
    return {
        "address": log.address,
        "topics": [_data(t) for t in log.topics],
        "data": _data(log.data),
        "blockNumber": _hex(log.block_number),
        "transactionHash": _data(log.tx_hash),
        "transactionIndex": _hex(log.tx_index),
        "logIndex": _hex(log.log_index),
        "blockHash": _data(b"\0" * 32),
        "removed": False,
    }


def _receipt(r: Receipt) -> dict[str, Any]:
    return {
        "transactionHash": _data(r.tx_hash),
        "blockNumber": _hex(r.block_number),
        "blockHash": _data(b"\0" * 32),
        "transactionIndex": "0x0",
        "gasUsed": _hex(r.gas_used),
        "cumulativeGasUsed": _hex(r.gas_used),
        "status": _hex(r.status),
        "contractAddress": r.contract_address,
        "logs": [_log(x) for x in r.logs],
        "type": "0x2",
    }


class EmbeddedRpc:
    def __init__(
        self, chain: EmbeddedChain, on_transaction: Callable[[], None] | None = None
    ) -> None:
        self.chain = chain
        self.on_transaction = on_transaction
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda _: _hex(chain.chain_id),
            "net_version": lambda _: str(chain.chain_id),
            "eth_blockNumber": lambda _: _hex(chain.block_number()),
            "eth_getBlockByNumber": self._block,
            "eth_getBalance": lambda p: _hex(chain.balance(p[0])),
            "eth_getTransactionCount": lambda p: _hex(chain.nonce(p[0])),
            "eth_getCode": lambda p: _data(chain.code(p[0])),
            "eth_call": self._call,
            "eth_estimateGas": self._estimate,
            "eth_gasPrice": lambda _: _hex(chain.base_fee()),
            "eth_maxPriorityFeePerGas": lambda _: "0x0",
            "eth_sendRawTransaction": self._send_raw,
            "eth_getTransactionReceipt": self._receipt,
            "eth_getLogs": self._logs,
            "eth_accounts": lambda _: [],
        }

    def _block_number(self, tag: Any) -> int:
        if tag in (None, "latest", "pending", "safe", "finalized"):
            return self.chain.block_number()
        if tag == "earliest":
            return 0
        return int(str(tag), 16)

    def _block(self, params: list[Any]) -> dict[str, Any]:
        number = self._block_number(params[0] if params else "latest")
        return {
            "number": _hex(number),
            "timestamp": _hex(self.chain.block_timestamp(number)),
            "baseFeePerGas": _hex(self.chain.base_fee()),
            "hash": _data(number.to_bytes(32, "big")),
            "parentHash": _data(max(number - 1, 0).to_bytes(32, "big")),
            "gasLimit": _hex(30_000_000),
            "gasUsed": "0x0",
            "transactions": [],
        }

    def _call(self, params: list[Any]) -> str:
        tx = params[0]
        try:
            return _data(
                self.chain.call(
                    tx["to"], _bytes(tx.get("data") or tx.get("input")), sender=tx.get("from")
                )
            )
        except ChainRevert as exc:
            raise _revert(exc) from None

    def _estimate(self, params: list[Any]) -> str:
        tx = params[0]
        if tx.get("to"):
            self._call(params)  # surfaces a revert the way a node does
        # the embedded chain mines one transaction per block: a generous fixed limit is safe
        return _hex(DEFAULT_TX_GAS // 2)

    def _send_raw(self, params: list[Any]) -> str:
        try:
            tx_hash = _data(self.chain.send_raw(_bytes(params[0])))
        except ChainRevert as exc:
            raise _revert(exc) from None
        except ChainError as exc:
            raise RpcError(-32000, str(exc)) from None
        except (PyEVMError, RLPException, ValidationError) as exc:
            # bytes that do not decode as a transaction of this chain's fork
            raise RpcError(-32602, f"invalid raw transaction ({type(exc).__name__})") from None
        if self.on_transaction is not None:
            self.on_transaction()  # the keeper reads the new events at once
        return tx_hash

    def _receipt(self, params: list[Any]) -> dict[str, Any] | None:
        try:
            return _receipt(self.chain.wait_for_receipt(_bytes(params[0])))
        except ChainError:
            return None

    def _logs(self, params: list[Any]) -> list[dict[str, Any]]:
        flt = params[0] if params else {}
        head = self.chain.block_number()
        start = self._block_number(flt.get("fromBlock", "latest"))
        end = min(self._block_number(flt.get("toBlock", "latest")), head)
        if end - start > 10_000:
            raise RpcError(-32005, "query exceeds 10000 blocks: ask for a narrower range")
        topics = [
            None if t is None else ([_bytes(v) for v in t] if isinstance(t, list) else _bytes(t))
            for t in flt.get("topics") or []
        ]
        logs = self.chain.get_logs(start, end, address=flt.get("address"), topics=topics)
        return [_log(x) for x in logs]

    def handle(self, request: Any) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise RpcError(-32600, "invalid request")
            method = self.methods.get(request["method"])
            if method is None:
                raise RpcError(-32601, f"method {request['method']} is not served here")
            params = request.get("params") or []
            if not isinstance(params, list):
                raise RpcError(-32602, "params must be a list")
            try:
                result = method(params)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError):
                raise RpcError(-32602, "invalid params") from None
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            return {"jsonrpc": "2.0", "id": rid, "error": error}


def rpc_router(chain: EmbeddedChain, on_transaction: Callable[[], None] | None = None) -> APIRouter:
    rpc = EmbeddedRpc(chain, on_transaction)
    router = APIRouter(tags=["chain"])

    @router.post("/chain", summary="JSON-RPC for the embedded chain")
    async def serve(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            )
        if isinstance(body, list):
            out: Any = [await anyio.to_thread.run_sync(rpc.handle, r) for r in body]
        else:
            out = await anyio.to_thread.run_sync(rpc.handle, body)
        return JSONResponse(out)

    return router
