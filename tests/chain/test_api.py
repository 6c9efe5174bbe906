"""Pieces of the typed API that need no chain: ids, the address book, revert decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from atoll.chain import AddressBook, ChainError, Contracts, EmbeddedChain, did_bytes
from atoll.chain.abi import ERROR_SELECTOR, PANIC_SELECTOR, decode_revert_reason


def test_did_bytes() -> None:
    raw = bytes(range(32))
    assert did_bytes(raw) == raw
    assert did_bytes("did:op:" + raw.hex()) == raw
    assert did_bytes(raw.hex()) == raw
    assert did_bytes("did:web:example") == keccak(text="did:web:example")
    with pytest.raises(ValueError):
        did_bytes(b"short")


def test_revert_reasons_decode() -> None:
    assert decode_revert_reason(ERROR_SELECTOR + encode(["string"], ["nope"])) == "nope"
    assert decode_revert_reason(PANIC_SELECTOR + encode(["uint256"], [0x11])) == "panic 0x11"
    assert decode_revert_reason(b"") == "execution reverted"
    assert decode_revert_reason(b"\x01\x02") == "execution reverted: 0x0102"


def test_address_book_rejects_missing_fields() -> None:
    with pytest.raises(ValueError, match="lacks"):
        AddressBook.from_dict({"chain_id": 1})


def test_contracts_refuse_a_book_of_another_chain(contract_cache: Path) -> None:
    addr = "0x" + "11" * 20
    fields = {name: addr for name in AddressBook.__dataclass_fields__}
    book = AddressBook.from_dict({**fields, "chain_id": 5, "deployed_block": 1})
    chain = EmbeddedChain()
    try:
        with pytest.raises(ChainError, match="chain 5"):
            Contracts(chain, book, cache_dir=contract_cache)
    finally:
        chain.close()


def test_embedded_chain_id_is_kept_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    EmbeddedChain(path, chain_id=4242).close()
    with EmbeddedChain(path) as chain:
        assert chain.chain_id == 4242
    with pytest.raises(ChainError, match="4242"):
        EmbeddedChain(path, chain_id=1)
