"""Any Ethereum JSON-RPC node by URL (web3.py's HTTPProvider).

Transactions are signed locally (eth-account) and sent raw, so the node holds no
keys. Gas is estimated before sending, which makes a reverting transaction fail
with :class:`ChainRevert` before it is mined, as on the embedded chain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.types import RPCEndpoint

from .abi import decode_revert_reason
from .base import DEV_CHAIN_IDS, Log, Receipt, Signer, TopicFilter, as_account, checksum
from .errors import ChainError, ChainRevert, ChainTimeout, ChainUnavailable

#: Gas estimates are padded by this factor: storage refunds and warm/cold access
#: differences can make the exact estimate fall short.
GAS_MARGIN = 1.25


def _hex_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _revert_from(exc: ContractLogicError) -> ChainRevert:
    data = exc.data
    if isinstance(data, str) and data.startswith("0x"):
        return ChainRevert(decode_revert_reason(_hex_bytes(data)))
    message = str(exc.message or exc)
    for prefix in ("execution reverted: ", "execution reverted"):
        if message.startswith(prefix):
            message = message[len(prefix) :] or "execution reverted"
            break
    return ChainRevert(message)


class RpcChain:
    """A chain reached over JSON-RPC at ``url`` (e.g. ``ATOLL_CHAIN_URL``).

    ``dev`` says whether it is a development chain; by default chain ids 1337 and
    31337 (anvil, hardhat) are.
    """

    def __init__(
        self,
        url: str,
        *,
        dev: bool | None = None,
        request_timeout: float = 30.0,
        poll_interval: float = 0.25,
    ) -> None:
        self.url = url
        provider = Web3.HTTPProvider(url, request_kwargs={"timeout": request_timeout})
        self.w3 = Web3(provider, middleware=[])
        self._poll = poll_interval
        self._send_lock = threading.Lock()
        try:
            self._chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:
            raise ChainUnavailable(f"no JSON-RPC node answers at {url}: {exc}") from exc
        self._dev = dev if dev is not None else self._chain_id in DEV_CHAIN_IDS

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def is_dev(self) -> bool:
        return self._dev

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise ChainError(f"{method} failed: {response['error']}")
        return response.get("result")

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_timestamp(self, block_number: int) -> int:
        return int(self.w3.eth.get_block(block_number)["timestamp"])

    def accounts(self) -> list[str]:
        return [checksum(a) for a in self.w3.eth.accounts]

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def nonce(self, address: str) -> int:
        return int(self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))

    def code(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address)))

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        params: dict[str, Any] = {"to": to_checksum_address(to), "data": "0x" + data.hex()}
        if sender is not None:
            params["from"] = to_checksum_address(sender)
        try:
            return bytes(self.w3.eth.call(cast(Any, params), "latest"))
        except ContractLogicError as exc:
            raise _revert_from(exc) from None

    def send(
        self,
        signer: Signer,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> bytes:
        account = as_account(signer)
        with self._send_lock:
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self._chain_id,
                "from": account.address,
                "value": value,
                "data": "0x" + data.hex(),
            }
            if to is not None:
                tx["to"] = to_checksum_address(to)
            if gas is None:
                try:
                    estimate = int(self.w3.eth.estimate_gas(cast(Any, tx)))
                except ContractLogicError as exc:
                    raise _revert_from(exc) from None
                gas = int(estimate * GAS_MARGIN) + 10_000
            block = self.w3.eth.get_block("latest")
            base_fee = int(block.get("baseFeePerGas", 0) or 0)
            tip = int(self.w3.eth.max_priority_fee)
            tx.update(
                nonce=self.nonce(account.address),
                gas=gas,
                maxPriorityFeePerGas=tip,
                maxFeePerGas=2 * base_fee + tip,
            )
            del tx["from"]
            raw = account.sign_transaction(tx).raw_transaction
            try:
                return bytes(self.w3.eth.send_raw_transaction(raw))
            except ContractLogicError as exc:
                raise _revert_from(exc) from None
            except Web3Exception as exc:
                raise ChainError(f"transaction rejected: {exc}") from exc

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = 120.0) -> Receipt:
        # Poll at once, then back off from 1 ms up to ``poll_interval``: a local
        # node mines within milliseconds, a public one within seconds.
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                r = self.w3.eth.get_transaction_receipt(cast(Any, tx_hash))
                break
            except TransactionNotFound:
                pass
            if time.monotonic() >= deadline:
                raise ChainTimeout(f"no receipt for 0x{tx_hash.hex()} after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, self._poll)
        receipt = Receipt(
            tx_hash=bytes(tx_hash),
            block_number=int(r["blockNumber"]),
            gas_used=int(r["gasUsed"]),
            status=int(r["status"]),
            contract_address=checksum(created) if (created := r.get("contractAddress")) else None,
            logs=tuple(self._log(x) for x in r["logs"]),
        )
        if receipt.status != 1:
            raise ChainRevert(self._replay_reason(tx_hash, receipt), tx_hash=bytes(tx_hash))
        return receipt

    def _replay_reason(self, tx_hash: bytes, receipt: Receipt) -> str:
        """Why a mined transaction failed: replay it as a call on the block before."""
        try:
            tx = self.w3.eth.get_transaction(cast(Any, tx_hash))
            params = {"from": tx["from"], "to": tx.get("to"), "data": tx["input"], "gas": tx["gas"]}
            self.w3.eth.call(cast(Any, params), receipt.block_number - 1)
        except ContractLogicError as exc:
            return _revert_from(exc).reason
        except Exception:  # the replay is only a best effort at a reason
            pass
        return "transaction reverted"

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

    @staticmethod
    def _log(x: Any) -> Log:
        return Log(
            address=checksum(x["address"]),
            topics=tuple(_hex_bytes(t) for t in x["topics"]),
            data=_hex_bytes(x["data"]),
            block_number=int(x["blockNumber"]),
            tx_hash=_hex_bytes(x["transactionHash"]),
            tx_index=int(x["transactionIndex"]),
            log_index=int(x["logIndex"]),
        )

    def get_logs(
        self,
        from_block: int,
        to_block: int,
        *,
        address: str | Sequence[str] | None = None,
        topics: Sequence[TopicFilter] | None = None,
    ) -> list[Log]:
        params: dict[str, Any] = {"fromBlock": int(from_block), "toBlock": int(to_block)}
        if address is not None:
            addresses = [address] if isinstance(address, str) else list(address)
            params["address"] = [to_checksum_address(a) for a in addresses]
        if topics:
            out: list[Any] = []
            for flt in topics:
                if flt is None:
                    out.append(None)
                elif isinstance(flt, bytes | bytearray):
                    out.append("0x" + bytes(flt).hex())
                else:
                    out.append(["0x" + bytes(v).hex() for v in flt])
            params["topics"] = out
        logs = self.w3.eth.get_logs(cast(Any, params))
        return sorted((self._log(x) for x in logs), key=lambda g: (g.block_number, g.log_index))

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
        """Nothing to release: web3 pools HTTP sessions per URL."""

    def __enter__(self) -> RpcChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
