"""A chain reached over plain JSON-RPC (httpx, eth-abi, libsecp256k1): what a client needs to
read contracts and send signed transactions, without an EVM in the process: the client's
chain, and the provider's when it names a node by URL.

Transactions are EIP-1559 ones, signed locally and sent raw, so the node holds no keys. Gas is
estimated first, so that a reverting transaction fails with :class:`ChainRevert` before it is
mined, as on every other backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import rlp  # type: ignore[import-untyped]
from coincurve import PrivateKey
from eth_hash.auto import keccak

from .abi import decode_revert_reason
from .base import DEV_CHAIN_IDS, Log, Receipt, Signer, TopicFilter, checksum, signer_address
from .errors import ChainError, ChainRevert, ChainTimeout, ChainUnavailable

#: Gas estimates are padded by this factor: storage refunds and warm/cold access differences
#: can make the exact estimate fall short.
GAS_MARGIN = 1.25


def _int(value: Any) -> int:
    return int(str(value), 16) if isinstance(value, str) else int(value)


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(str(value or "0x").removeprefix("0x"))


def _data(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _private_key(signer: Signer) -> bytes:
    if isinstance(signer, bytes):
        return signer
    if isinstance(signer, str):
        return bytes.fromhex(signer.removeprefix("0x"))
    return bytes(signer.key)


def sign_transaction(private_key: bytes, tx: dict[str, Any]) -> bytes:
    """The raw bytes of a signed EIP-1559 (type 2) transaction. ``tx`` holds ``chainId``,
    ``nonce``, ``maxPriorityFeePerGas``, ``maxFeePerGas``, ``gas``, ``to`` (None deploys),
    ``value`` and ``data`` (bytes)."""
    to = _bytes(tx["to"]) if tx.get("to") else b""
    fields: list[Any] = [
        tx["chainId"],
        tx["nonce"],
        tx["maxPriorityFeePerGas"],
        tx["maxFeePerGas"],
        tx["gas"],
        to,
        tx.get("value", 0),
        tx.get("data", b""),
        [],  # no access list
    ]
    digest = keccak(b"\x02" + rlp.encode(fields))
    sig = PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    r, s, parity = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    return b"\x02" + bytes(rlp.encode([*fields, parity, r, s]))


class LightChain:
    """A chain at ``url`` over JSON-RPC. ``chain_id`` given saves asking the node for it;
    ``dev`` says whether it is a development chain (by default chain ids 1337 and 31337 are)."""

    def __init__(
        self,
        url: str,
        *,
        chain_id: int | None = None,
        dev: bool | None = None,
        request_timeout: float = 30.0,
        poll_interval: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self._http = httpx.Client(timeout=request_timeout, transport=transport)
        self._poll = poll_interval
        self._send_lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._chain_id = chain_id if chain_id is not None else _int(self._rpc("eth_chainId", []))
        self._dev = dev if dev is not None else self._chain_id in DEV_CHAIN_IDS

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def is_dev(self) -> bool:
        return self._dev

    def _rpc(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._http.post(self.url, json=body)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(
                f"no JSON-RPC node answers at {self.url} ({type(exc).__name__})"
            ) from None
        if not isinstance(answer, dict):
            raise ChainError(f"{method}: the node's answer is not a JSON-RPC response")
        error = answer.get("error")
        if error is not None:
            raise _error(method, error)
        return answer.get("result")

    def block_number(self) -> int:
        return _int(self._rpc("eth_blockNumber", []))

    def _block(self, tag: str | int) -> dict[str, Any]:
        block: dict[str, Any] = self._rpc(
            "eth_getBlockByNumber", [tag if isinstance(tag, str) else hex(tag), False]
        )
        if block is None:
            raise ChainError(f"no block {tag}")
        return block

    def now(self) -> int:
        """The latest block's timestamp."""
        return _int(self._block("latest")["timestamp"])

    def block_timestamp(self, block_number: int) -> int:
        return _int(self._block(block_number)["timestamp"])

    def accounts(self) -> list[str]:
        return [checksum(a) for a in self._rpc("eth_accounts", []) or []]

    def balance(self, address: str) -> int:
        return _int(self._rpc("eth_getBalance", [checksum(address), "latest"]))

    def nonce(self, address: str) -> int:
        return _int(self._rpc("eth_getTransactionCount", [checksum(address), "pending"]))

    def code(self, address: str) -> bytes:
        return _bytes(self._rpc("eth_getCode", [checksum(address), "latest"]))

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        params: dict[str, Any] = {"to": checksum(to), "data": _data(data)}
        if sender is not None:
            params["from"] = checksum(sender)
        return _bytes(self._rpc("eth_call", [params, "latest"]))

    def send(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> bytes:
        key = _private_key(signer)
        sender = signer_address(key)
        with self._send_lock:
            if gas is None:
                request: dict[str, Any] = {"from": sender, "value": hex(value), "data": _data(data)}
                if to is not None:
                    request["to"] = checksum(to)
                gas = int(_int(self._rpc("eth_estimateGas", [request])) * GAS_MARGIN) + 10_000
            base_fee = _int(self._block("latest").get("baseFeePerGas") or 0)
            tip = _int(self._rpc("eth_maxPriorityFeePerGas", []))
            raw = sign_transaction(
                key,
                {
                    "chainId": self._chain_id,
                    "nonce": self.nonce(sender),
                    "maxPriorityFeePerGas": tip,
                    "maxFeePerGas": 2 * base_fee + tip,
                    "gas": gas,
                    "to": to,
                    "value": value,
                    "data": data,
                },
            )
            return _bytes(self._rpc("eth_sendRawTransaction", [_data(raw)]))

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = 120.0) -> Receipt:
        # at once, then backing off from 1 ms: a local node mines within milliseconds
        deadline = time.monotonic() + timeout
        delay = 0.001
        while (r := self._rpc("eth_getTransactionReceipt", [_data(tx_hash)])) is None:
            if time.monotonic() >= deadline:
                raise ChainTimeout(f"no receipt for 0x{tx_hash.hex()} after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, self._poll)
        created = r.get("contractAddress")
        receipt = Receipt(
            tx_hash=bytes(tx_hash),
            block_number=_int(r["blockNumber"]),
            gas_used=_int(r["gasUsed"]),
            status=_int(r["status"]),
            contract_address=checksum(created) if created else None,
            logs=tuple(_log(x) for x in r["logs"]),
        )
        if receipt.status != 1:
            raise ChainRevert("transaction reverted", tx_hash=bytes(tx_hash))
        return receipt

    def transact(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        return self.wait_for_receipt(self.send(signer, to, data, value=value, gas=gas))

    def get_logs(
        self,
        from_block: int,
        to_block: int,
        *,
        address: str | Sequence[str] | None = None,
        topics: Sequence[TopicFilter] | None = None,
    ) -> list[Log]:
        params: dict[str, Any] = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if address is not None:
            addresses = [address] if isinstance(address, str) else list(address)
            params["address"] = [checksum(a) for a in addresses]
        if topics:
            params["topics"] = [
                None
                if flt is None
                else _data(flt)
                if isinstance(flt, bytes | bytearray)
                else [_data(v) for v in flt]
                for flt in topics
            ]
        logs = [_log(x) for x in self._rpc("eth_getLogs", [params]) or []]
        return sorted(logs, key=lambda g: (g.block_number, g.log_index))

    def _require_dev(self, what: str) -> None:
        if not self._dev:
            raise ChainError(f"{what} is only available on development chains")

    def increase_time(self, seconds: int) -> None:
        self._require_dev("increase_time")
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._rpc("evm_increaseTime", [int(seconds)])
        self._rpc("evm_mine", [])

    def mine(self, blocks: int = 1) -> None:
        self._require_dev("mine")
        for _ in range(blocks):
            self._rpc("evm_mine", [])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LightChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(method: str, error: Any) -> ChainError:
    if not isinstance(error, dict):
        return ChainError(f"{method} failed")
    data, message = error.get("data"), str(error.get("message") or "")
    if isinstance(data, dict):  # some nodes nest the revert data
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) > 2:
        try:
            return ChainRevert(decode_revert_reason(_bytes(data)))
        except ValueError:
            pass
    if "revert" in message:
        reason = message.split("execution reverted", 1)[-1].removeprefix(":").strip()
        return ChainRevert(reason or "execution reverted")
    return ChainError(f"{method} failed: {message[:200]}")


def _log(x: dict[str, Any]) -> Log:
    return Log(
        address=checksum(x["address"]),
        topics=tuple(_bytes(t) for t in x["topics"]),
        data=_bytes(x["data"]),
        block_number=_int(x["blockNumber"]),
        tx_hash=_bytes(x["transactionHash"]),
        tx_index=_int(x["transactionIndex"]),
        log_index=_int(x["logIndex"]),
    )
