"""The embedded chain's JSON-RPC answers malformed calls with JSON-RPC errors, never by
raising (which the provider would have to answer with a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atoll.chain import EmbeddedChain
from atoll.chain.rpc_server import EmbeddedRpc


@pytest.fixture
def rpc(tmp_path: Path) -> Iterator[EmbeddedRpc]:
    chain = EmbeddedChain(tmp_path / "chain.sqlite")
    yield EmbeddedRpc(chain)
    chain.close()


@pytest.mark.parametrize(
    "method, params",
    [
        ("eth_getLogs", [[1]]),
        ("eth_estimateGas", [[]]),
        ("eth_call", [1]),
        ("eth_sendRawTransaction", ["0x1234"]),
        ("eth_sendRawTransaction", ["0x02" + "ff" * 40]),
        ("eth_sendRawTransaction", ["0xc0"]),
    ],
)
def test_malformed_calls_are_rpc_errors(rpc: EmbeddedRpc, method: str, params: list[Any]) -> None:
    answer = rpc.handle({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    assert answer["id"] == 7
    assert answer["error"]["code"] == -32602, answer
    assert rpc.chain.block_number() == 0
