"""The client's chain over plain JSON-RPC: its transactions are the ones eth-account signs, and
it reads, sends and reports reverts against the embedded chain's JSON-RPC as every backend
does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from atoll.chain import AddressBook, ChainRevert, Contracts, EmbeddedChain, dev_accounts
from atoll.chain.light import LightChain, sign_transaction
from atoll.chain.rpc_server import EmbeddedRpc
from atoll.signing import Key, checksum_address


def test_a_transaction_is_signed_as_eth_account_signs_it() -> None:
    key = bytes(range(1, 33))
    tx = {
        "chainId": 1337,
        "nonce": 7,
        "maxPriorityFeePerGas": 2,
        "maxFeePerGas": 3_000_000_000,
        "gas": 210_000,
        "to": checksum_address("0x" + "ab" * 20),
        "value": 10**18,
        "data": b"\x01\x02call",
    }
    theirs = Account.sign_transaction(
        {**tx, "type": 2, "data": "0x" + tx["data"].hex()}, key
    ).raw_transaction
    assert sign_transaction(key, tx) == bytes(theirs)
    # a deployment: no recipient
    deploy = {**tx, "to": None, "value": 0}
    theirs = Account.sign_transaction(
        {k: v for k, v in deploy.items() if k != "to"} | {"type": 2, "data": "0x0102"}, key
    ).raw_transaction
    assert sign_transaction(key, deploy | {"data": b"\x01\x02"}) == bytes(theirs)


@pytest.fixture
def served(tmp_path: Path, contract_cache: Path) -> Iterator[tuple[EmbeddedChain, LightChain]]:
    """An embedded chain with the contracts, and a LightChain on its JSON-RPC."""
    chain = EmbeddedChain(tmp_path / "chain.sqlite")
    rpc = EmbeddedRpc(chain)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=rpc.handle(json.loads(request.content)))

    light = LightChain("http://chain.test/", transport=httpx.MockTransport(answer))
    try:
        yield chain, light
    finally:
        light.close()
        chain.close()


def test_reads_and_sends_through_json_rpc(
    served: tuple[EmbeddedChain, LightChain], contract_cache: Path
) -> None:
    chain, light = served
    assert light.chain_id == chain.chain_id and light.is_dev
    gov = dev_accounts(1)[0]
    book = Contracts.deploy(chain, gov, cache_dir=contract_cache)
    # the book as a client gets it, and the shipped ABIs: no compiler on this side
    contracts = Contracts(light, AddressBook.from_dict(book.to_dict()))
    publisher = Key.generate()
    chain.transact(gov, publisher.address, value=10**18)
    assert light.balance(publisher.address) == 10**18
    contracts.register_did(publisher.private_key, "did:atoll:" + "11" * 32, b"\x22" * 32)
    record = Contracts(chain, book, cache_dir=contract_cache).did_record(b"\x11" * 32)
    assert record is not None and record.owner == publisher.address
    assert light.nonce(publisher.address) == 1
    assert light.block_number() == chain.block_number()


def test_a_revert_is_a_chain_revert_with_its_reason(
    served: tuple[EmbeddedChain, LightChain], contract_cache: Path
) -> None:
    chain, light = served
    gov = dev_accounts(1)[0]
    book = Contracts.deploy(chain, gov, cache_dir=contract_cache)
    contracts = Contracts(light, AddressBook.from_dict(book.to_dict()))
    stranger = Key.generate()
    chain.transact(gov, stranger.address, value=10**18)
    did = "did:atoll:" + "33" * 32
    contracts.register_did(gov.key, did, b"\x44" * 32)
    with pytest.raises(ChainRevert) as caught:
        contracts.update_checksum(stranger.private_key, did, b"\x55" * 32)
    assert caught.value.reason
    assert light.nonce(stranger.address) == 0  # refused before it was sent
